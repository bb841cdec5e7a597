"""One client connection: the wire codec (framing of PROTOCOL.md) and a bounded outbound queue."""

import collections
import json
import os
import selectors
import struct

from .limits import CONGESTED, MAX_HEADER, MAX_REQUEST_BODY, RECV_SIZE, STDIN_BACKLOG_MAX
from .util import log
from .validate import is_id


class Connection:
    """One client: frame parsing, a bounded outbound queue, and the requests it started."""

    def __init__(self, agent, sock):
        self.agent = agent
        self.loop = agent.loop
        self.sock = sock
        self.fd = sock.fileno() if sock is not None else None
        self.inbuf = bytearray()
        self.outq = collections.deque()
        self.unsent = 0
        self.active = {}  # request id -> Request still in progress
        self.feeders = set()  # producers waiting for the outbound queue to drain
        self.resume_scheduled = False
        self.reading = True
        self.events = 0
        self.closed = False
        self.skipping = 0  # bytes of a refused frame still to drop
        self._update_interest()

    @property
    def congested(self):
        return self.unsent > CONGESTED

    def wait_drain(self, feeder):
        """feeder.resume() will be called once the outbound queue is short again."""
        self.feeders.add(feeder)

    def send(self, header, body=b""):
        if self.closed:
            return
        head = json.dumps(header, separators=(",", ":")).encode()
        self.outq.append(struct.pack(">II", len(head), len(body)) + head)
        if body:
            self.outq.append(body)
        self.unsent += 8 + len(head) + len(body)
        self._flush()

    def reply(self, rid, kind, **fields):
        self.send({"type": kind, "id": rid, **fields})

    def error(self, rid, code, message):
        self.reply(rid, "error", code=code, message=message)

    def input_progress(self):
        """Called when stdin backlog shrinks: reading may resume."""
        if not self.reading and not self.closed:
            self._update_interest()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._close_transport()
        self.outq.clear()
        self.unsent = 0
        for request in list(self.active.values()):
            request.cancel()
        self.active.clear()
        # Pipes paused for this connection now feed nobody; they must not stay paused.
        feeders, self.feeders = self.feeders, set()
        for feeder in feeders:
            feeder.resume()
        self.agent.connections.discard(self)
        self.agent.connection_closed()

    # The transport: a connected socket here, the agent's own stdin/stdout in StdioConnection.

    def _recv(self, size):
        return self.sock.recv(size)

    def _send(self, chunk):
        return self.sock.send(chunk)

    def _watch(self, events):
        self.loop.watch(self.fd, events, self._on_ready)

    def _close_transport(self):
        self.loop.watch(self.fd, 0)
        self.sock.close()

    def _update_interest(self):
        backlog = sum(request.input_backlog() for request in self.active.values())
        self.reading = backlog <= STDIN_BACKLOG_MAX
        events = (selectors.EVENT_READ if self.reading else 0) | (
            selectors.EVENT_WRITE if self.outq else 0
        )
        if events != self.events:
            self.events = events
            self._watch(events)

    def _on_ready(self, mask):
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            self._receive()

    def _receive(self):
        try:
            data = self._recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbuf += data
        self._parse()
        if not self.closed:
            self._update_interest()

    def _parse(self):
        buf, pos = self.inbuf, 0
        if self.skipping:  # the rest of a frame over the limits, read and dropped
            dropped = min(self.skipping, len(buf))
            self.skipping -= dropped
            pos = dropped
        while len(buf) - pos >= 8 and not self.closed:
            head_len, body_len = struct.unpack_from(">II", buf, pos)
            if head_len > MAX_HEADER or body_len > MAX_REQUEST_BODY:
                # Refused alone: the connection and the other requests on it go on.
                if head_len <= MAX_HEADER and len(buf) - pos < 8 + head_len:
                    break  # answer under the request's id once its header is in
                head = bytes(buf[pos + 8 : pos + 8 + head_len]) if head_len <= MAX_HEADER else None
                self._refuse(head, head_len, body_len)
                size = 8 + head_len + body_len
                dropped = min(size, len(buf) - pos)
                self.skipping = size - dropped
                pos += dropped
                continue
            end = pos + 8 + head_len + body_len
            if len(buf) < end:
                break
            head = bytes(buf[pos + 8 : pos + 8 + head_len])
            body = bytes(buf[pos + 8 + head_len : end])
            pos = end
            self.agent.handle(self, head, body)
        del buf[:pos]

    def _refuse(self, head, head_len, body_len):
        message = f"frame of {head_len}+{body_len} bytes is over the limits ({MAX_HEADER}+{MAX_REQUEST_BODY})"
        log(f"refusing a request: {message}")
        rid = None
        if head is not None:
            try:
                header = json.loads(head)
                rid = header.get("id") if isinstance(header, dict) and is_id(header.get("id")) else None
            except (ValueError, RecursionError):
                pass
        self.error(rid, "E2BIG", message)

    def _flush(self):
        while self.outq:
            chunk = self.outq[0]
            try:
                sent = self._send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            self.unsent -= sent
            if sent < len(chunk):
                self.outq[0] = memoryview(chunk)[sent:]
                break
            self.outq.popleft()
        if self.feeders and not self.congested and not self.resume_scheduled:
            # Resume from the loop, not from inside a producer's send().
            self.resume_scheduled = True
            self.loop.call_later(0, self._resume_feeders)
        self._update_interest()

    def _resume_feeders(self):
        self.resume_scheduled = False
        feeders, self.feeders = self.feeders, set()
        for feeder in feeders:
            feeder.resume()


class StdioConnection(Connection):
    """The client attached to the container's own stdin/stdout (the host that created the
    sandbox attaches before it starts, saving an exec and its relay). Two pipes instead of one
    socket; everything else is a Connection. It counts as a client only once a byte arrives
    (nobody may ever attach), and ends for good at EOF: the engine closes the container's stdin
    when that one client detaches, so it is never shared or reused."""

    def __init__(self, agent, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self.attached = False
        super().__init__(agent, None)

    def _recv(self, size):
        data = os.read(self.rfd, size)
        if data and not self.attached:
            self.attached = True
            self.agent.connection_opened(self)
        return data

    def _send(self, chunk):
        return os.write(self.wfd, chunk)

    def _watch(self, events):
        self.loop.watch(self.rfd, events & selectors.EVENT_READ, self._on_ready)
        self.loop.watch(self.wfd, events & selectors.EVENT_WRITE, self._on_ready)

    def _close_transport(self):
        self.loop.watch(self.rfd, 0)
        self.loop.watch(self.wfd, 0)
        os.close(self.rfd)
        os.close(self.wfd)
