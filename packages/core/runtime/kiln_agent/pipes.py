"""Non-blocking pipes between the agent and its children, with backpressure."""

import os
import selectors

from .limits import DRAIN_LIMIT, PIPE_READ_SIZE


class PipeReader:
    """Reads a non-blocking pipe into owner.pipe_data(tag, data) and owner.pipe_eof(tag).

    While the connection the data goes to (owner.feeding()) has too much unsent, the reader
    stops watching the pipe: the writer then blocks instead of the agent buffering without end.
    """

    def __init__(self, loop, fd, tag, owner):
        self.loop, self.fd, self.tag, self.owner = loop, fd, tag, owner
        os.set_blocking(fd, False)
        self.resume()

    @property
    def open(self):
        return self.fd is not None

    def resume(self):
        if self.fd is not None:
            self.loop.watch(self.fd, selectors.EVENT_READ, self._on_readable)

    def drain(self):
        """Take what the pipe holds right now (bounded), whatever the congestion."""
        total = 0
        while total < DRAIN_LIMIT:
            count = self._read()
            if not count:
                return
            total += count

    def close(self):
        if self.fd is not None:
            self.loop.watch(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def _on_readable(self, mask):
        conn = self.owner.feeding()
        if conn is not None and conn.congested:
            self.loop.watch(self.fd, 0)
            conn.wait_drain(self)
        else:
            self._read()

    def _read(self):
        """Read one chunk; the number of bytes read, 0 if none are available or at EOF."""
        if self.fd is None:
            return 0
        try:
            data = os.read(self.fd, PIPE_READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError:
            data = b""
        if not data:
            self.close()
            self.owner.pipe_eof(self.tag)
            return 0
        self.owner.pipe_data(self.tag, data)
        return len(data)


class PipeWriter:
    """Writes to a non-blocking pipe, keeping what the reader has not taken yet."""

    def __init__(self, loop, fd, on_progress=None):
        self.loop, self.fd, self.on_progress = loop, fd, on_progress
        self.pending = bytearray()
        self.ending = False
        os.set_blocking(fd, False)

    def write(self, data):
        if self.fd is not None:
            self.pending += data
            self._flush()

    def end(self):
        """Close the pipe once everything written so far is through."""
        self.ending = True
        if self.fd is not None:
            self._flush()

    def close(self):
        if self.fd is not None:
            self.loop.watch(self.fd, 0)
            os.close(self.fd)
            self.fd = None
        self.pending = bytearray()

    def _flush(self, mask=None):
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                break
            except OSError:  # the reader is gone: what is left cannot be delivered
                self.close()
                break
            del self.pending[:written]
        if self.fd is not None:
            if self.pending:
                self.loop.watch(self.fd, selectors.EVENT_WRITE, self._flush)
            elif self.ending:
                self.close()
            else:
                self.loop.watch(self.fd, 0)
        if self.on_progress is not None:
            self.on_progress()
