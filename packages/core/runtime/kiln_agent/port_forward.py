"""`port_open`: a TCP connection from the agent to a port inside the sandbox, carried over the
agent connection (as `kubectl port-forward` does), so a server in a sandbox without any network
is reachable from the host: preview URLs ride on this.

The agent dials 127.0.0.1:port (never another host). Bytes from the sandbox's server arrive as
`data` frames; bytes for it are `port_data {target}` frames. Either side ends its direction
(`end` / `port_end`); `closed` is the last frame. Backpressure both ways: the socket is not read
while the connection is congested or the host asked `port_pause`; a host sending faster than the
server reads counts as the connection's input backlog (PROTOCOL.md, output caps).
"""

import errno
import os
import selectors
import socket

from .limits import FORWARD_READ_SIZE
from .request import Request
from .validate import field, is_count, is_id


def is_port(v):
    return is_count(v) and 1 <= v <= 65535 and int(v) == v


class PortForward(Request):
    detachable = True  # `cancel` closes the socket

    def __init__(self, conn, rid, port):
        super().__init__(conn, rid)
        self.loop = conn.loop
        self.connected = False
        self.closed = False
        self.read_open = True  # the sandbox's server may still send
        self.write_open = True  # the host may still send
        self.ending = False  # port_end received; shut down writing once pending is through
        self.paused = False
        self.waiting = False
        self.pending = bytearray()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        code = self.sock.connect_ex(("127.0.0.1", int(port)))
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(code, f"{os.strerror(code)}: 127.0.0.1:{int(port)}")
        self.loop.watch(self.fd, selectors.EVENT_WRITE, self._on_ready)

    def input_backlog(self):
        return len(self.pending)

    def _interest(self):
        if self.closed:
            return
        events = 0
        if self.connected:
            if self.read_open and not self.paused and not self.waiting:
                events |= selectors.EVENT_READ
            if self.pending:
                events |= selectors.EVENT_WRITE
        else:
            events = selectors.EVENT_WRITE
        self.loop.watch(self.fd, events, self._on_ready)

    def _on_ready(self, mask):
        if not self.connected:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.send("error", code=errno.errorcode.get(code, "EIO"), message=f"{os.strerror(code)}: 127.0.0.1")
                self._close(reply=False)
                return
            self.connected = True
            self.send("ok")
            self._flush()
            self._interest()
            return
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            self._read()

    def _read(self):
        if self.conn.congested:
            self.waiting = True
            self.conn.wait_drain(self)
            self._interest()
            return
        try:
            data = self.sock.recv(FORWARD_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if data:
            self.send("data", data)
            return
        self.read_open = False
        self.send("end")
        self._finish_if_done()
        self._interest()

    def resume(self):
        """The connection drained."""
        self.waiting = False
        self._interest()

    def write(self, data):
        if self.closed or not self.write_open or self.ending:
            return
        self.pending += data
        if self.connected:
            self._flush()

    def end(self):
        self.ending = True
        if self.connected:
            self._flush()

    def pause(self, paused):
        self.paused = paused
        self._interest()

    def _flush(self):
        while self.pending and not self.closed:
            try:
                sent = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._fail(exc)
                return
            del self.pending[:sent]
        if self.closed:
            return
        if self.ending and not self.pending and self.write_open:
            self.write_open = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self.conn.input_progress()
        self._finish_if_done()
        self._interest()

    def _fail(self, exc):
        self.send("closed", error=errno.errorcode.get(exc.errno, "EIO") if exc.errno else "EIO")
        self._close(reply=False)

    def _finish_if_done(self):
        if not self.closed and not self.read_open and not self.write_open:
            self.send("closed")
            self._close(reply=False)

    def cancel(self):
        self._close(reply=True)

    def _close(self, reply):
        if self.closed:
            return
        if reply:
            self.send("closed")
        self.closed = True
        self.loop.watch(self.fd, 0)
        self.sock.close()
        self.pending = bytearray()
        self.retire()
        self.conn.input_progress()


def handlers(agent):
    def req_port_open(conn, rid, header, body):
        conn.active[rid] = PortForward(conn, rid, field(header, "port", is_port))

    def target(conn, header):
        forward = conn.active.get(field(header, "target", is_id))
        return forward if isinstance(forward, PortForward) else None

    def req_port_data(conn, header, body):
        forward = target(conn, header)
        if forward is not None:
            forward.write(body)

    def req_port_end(conn, header, body):
        forward = target(conn, header)
        if forward is not None:
            forward.end()

    def req_port_pause(conn, header, body):
        forward = target(conn, header)
        if forward is not None:
            forward.pause(True)

    def req_port_resume(conn, header, body):
        forward = target(conn, header)
        if forward is not None:
            forward.pause(False)

    return {
        "port_open": req_port_open,
        "port_data": req_port_data,
        "port_end": req_port_end,
        "port_pause": req_port_pause,
        "port_resume": req_port_resume,
    }
