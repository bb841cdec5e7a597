"""Bounded output kept by the agent (a ring per stream) and the readers that follow it.

A PTY session and a background process keep their output in rings; any number of readers
(`Follower`s, each a request on some connection) follow them. The process writing the output
is never paused for a reader: a reader whose connection is congested stops being sent to, and
once its connection drains it resumes from its own offset in the ring, or from the ring's
oldest byte if the ring has moved past it (it skips what it missed).
"""

from .limits import FOLLOW_CHUNK
from .request import Request


class Ring:
    """The last `limit` bytes of a stream, addressed by absolute offsets from its start."""

    def __init__(self, limit):
        self.limit = limit
        self.buf = bytearray()
        self.start = 0  # offset of buf[0] in the whole stream

    @property
    def end(self):
        return self.start + len(self.buf)

    def append(self, data):
        self.buf += data
        excess = len(self.buf) - self.limit
        if excess > 0:
            del self.buf[:excess]
            self.start += excess

    def read(self, offset, size):
        """(offset, bytes): up to size bytes from offset, or from the oldest byte kept if later."""
        offset = max(offset, self.start)
        at = offset - self.start
        return offset, bytes(self.buf[at : at + size])

    def text(self):
        return bytes(self.buf)


class Follower(Request):
    """Sends one or more rings to a connection as `<stream> {offset}` frames, then a last frame.

    `streams` maps a frame type ("data", "stdout", "stderr") to its ring. `follow`: keep
    sending as the rings grow until the source ends; otherwise end once caught up with what
    the rings held when it started. `finish()` gives the last frame's (type, fields) once the
    follower has caught up and the source has ended (or, without follow, at once).
    """

    detachable = True  # `cancel` ends it (the source keeps running)

    def __init__(self, conn, rid, source, streams, offsets, follow):
        super().__init__(conn, rid)
        self.source = source
        self.streams = streams
        self.offsets = dict(offsets)
        self.follow = follow
        self.stop_at = None if follow else {name: ring.end for name, ring in streams.items()}
        self.waiting = False
        self.done = False

    def resume(self):
        self.waiting = False
        self.pump()

    def pump(self):
        """Send what this reader has not seen yet, as far as its connection takes it."""
        if self.done or self.waiting:
            return
        conn = self.conn
        for name, ring in self.streams.items():
            end = ring.end if self.stop_at is None else self.stop_at[name]
            while self.offsets[name] < end:
                if conn.closed:
                    return
                if conn.congested:
                    self.waiting = True
                    conn.wait_drain(self)
                    return
                offset, data = ring.read(self.offsets[name], min(FOLLOW_CHUNK, end - self.offsets[name]))
                if not data:
                    break
                self.send(name, data, offset=offset)
                self.offsets[name] = offset + len(data)
        if not self.follow or self.source.ended:
            self.done = True
            kind, fields = self.source.finish(self)
            self.send(kind, **fields)
            self.retire()
            self.source.followers.discard(self)

    def cancel(self):
        self.done = True
        self.source.followers.discard(self)
        self.send("detached")  # the last frame of a reader that stopped (nothing if its connection closed)
        self.retire()


class Waiter(Request):
    """A request answered `exit {exitCode}` when its source ends (at once if it has)."""

    detachable = True

    def __init__(self, conn, rid, source):
        super().__init__(conn, rid)
        self.source = source
        if source.ended:
            self.answer()
        else:
            source.waiters.add(self)

    def answer(self):
        self.send("exit", exitCode=self.source.exit_code)
        self.retire()

    def cancel(self):
        self.source.waiters.discard(self)
        self.send("detached")
        self.retire()


def ended(source):
    """Tell a source's followers and waiters that it has ended."""
    for follower in list(source.followers):
        follower.pump()
    waiters, source.waiters = source.waiters, set()
    for waiter in waiters:
        waiter.answer()


def exit_code_of(returncode):
    return 128 - returncode if returncode < 0 else returncode
