"""Terminals: ``sandbox.pty.create(cols=, rows=)`` attaches to a PTY in the sandbox over the
server's WebSocket route. Output arrives as bytes in ``on_data`` as it is produced (after the
scrollback the server kept, on connect); ``write`` sends keystrokes, ``resize`` resizes in order
with them, ``wait`` returns the program's exit code.

Two thin transports around one sans-IO session (``_websocket.PtySession``): a socket with a
reader thread (:class:`Pty`), asyncio streams with a reader task (:class:`AsyncPty`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from . import _protocol as p
from . import errors
from ._transport import AsyncTransport, SyncTransport
from ._websocket import PtySession, check_upgrade, handshake, parse_head, pty_body

__all__ = ["AsyncPty", "AsyncSandboxPty", "Pty", "SandboxPty"]

OnData = Optional[Callable[[bytes], Any]]
Command = Union[str, Sequence[str], None]


def _endpoint(url: str, sandbox_id: str, pty_id: str) -> Tuple[str, int, bool, str]:
    u = urlsplit(url)
    tls = u.scheme == "https"
    port = u.port or (443 if tls else 80)
    return u.hostname or "127.0.0.1", port, tls, u.path.rstrip("/") + p.pty_path(sandbox_id, pty_id)


def _content_length(headers: Mapping[str, str]) -> int:
    try:
        return min(int(headers.get("content-length", "0")), 64 * 1024)
    except ValueError:
        return 0


def _closed_early(pty_id: str) -> errors.AgentUnavailableError:
    return errors.AgentUnavailableError(f"The connection to terminal {pty_id} closed before it exited")


class Pty:
    """A terminal attached over a WebSocket (a reader thread delivers ``on_data``)."""

    def __init__(self, transport: SyncTransport, sandbox_id: str, pty_id: str, on_data: OnData) -> None:
        self.id = pty_id
        self._t = transport
        self._sandbox_id = sandbox_id
        self._session = PtySession(on_data)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._error: Optional[BaseException] = None
        host, port, tls, target = _endpoint(transport.url, sandbox_id, pty_id)
        sock = socket.create_connection((host, port), timeout=30)
        if tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        try:
            request, key = handshake(f"{host}:{port}", target, {"Authorization": f"Bearer {transport.api_key}"})
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise _closed_early(pty_id)
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            status, headers = parse_head(head)
            if status != 101:
                while len(rest) < _content_length(headers):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
            check_upgrade(status, headers, key, rest)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self._sock = sock
        self._consume(rest)
        self._reader = threading.Thread(target=self._read, name=f"kiln-pty-{pty_id}", daemon=True)
        self._reader.start()

    def _consume(self, data: bytes) -> None:
        replies = self._session.receive(data)
        if replies:
            with self._lock:
                self._sock.sendall(replies)
        if self._session.exit_code is not None or self._session.closed:
            self._done.set()

    def _read(self) -> None:
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                self._consume(data)
                if self._session.closed:
                    break
        except OSError:
            pass  # closed under us (close()), or the connection was cut
        except BaseException as err:  # on_data raised: the caller sees it from wait()
            self._error = err
        finally:
            self._done.set()

    def write(self, data: Union[str, bytes]) -> None:
        """Sends keystrokes (str as UTF-8)."""
        frame = self._session.data_frame(data)
        with self._lock:
            self._sock.sendall(frame)

    def resize(self, cols: int, rows: int) -> None:
        frame = self._session.resize_frame(cols, rows)
        with self._lock:
            self._sock.sendall(frame)

    def kill(self) -> None:
        """Ends the terminal's program (SIGKILL); ``wait`` then returns its exit code."""
        self._t.run(p.kill_pty(self._sandbox_id, self.id))

    def wait(self, timeout: Optional[float] = None) -> int:
        """The program's exit code, once it ended; ``TimeoutError`` after ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"terminal {self.id} still runs after {timeout} s")
        if self._error is not None:
            raise self._error
        if self._session.exit_code is None:
            raise _closed_early(self.id)
        return self._session.exit_code

    def close(self) -> None:
        """Detaches (the terminal keeps running in the sandbox; ``connect`` re-attaches)."""
        try:
            with self._lock:
                self._sock.sendall(self._session.close_frame())
        except OSError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SandboxPty:
    """``sandbox.pty``: open and re-attach terminals."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    def create(
        self,
        *,
        cols: int = 80,
        rows: int = 24,
        command: Command = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        on_data: OnData = None,
    ) -> Pty:
        """Opens a terminal (a login shell unless ``command``) and attaches to it."""
        pty_id = self._t.run(p.create_pty(self._id, pty_body(cols, rows, command, cwd, env)))
        return Pty(self._t, self._id, pty_id, on_data)

    def connect(self, pty_id: str, *, on_data: OnData = None) -> Pty:
        """Re-attaches: the scrollback first, then live output."""
        return Pty(self._t, self._id, pty_id, on_data)


class AsyncPty:
    """The asyncio twin of :class:`Pty` (a reader task delivers ``on_data``)."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str, pty_id: str, on_data: OnData) -> None:
        self.id = pty_id
        self._t = transport
        self._sandbox_id = sandbox_id
        self._session = PtySession(on_data)
        self._done = asyncio.Event()
        self._error: Optional[BaseException] = None
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._task: Optional[asyncio.Task[None]] = None

    async def _open(self) -> AsyncPty:
        host, port, tls, target = _endpoint(self._t.url, self._sandbox_id, self.id)
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if tls else None, limit=1 << 20
        )
        try:
            request, key = handshake(f"{host}:{port}", target, {"Authorization": f"Bearer {self._t.api_key}"})
            writer.write(request)
            await writer.drain()
            try:
                head = (await reader.readuntil(b"\r\n\r\n"))[:-4]
            except asyncio.IncompleteReadError as err:
                raise _closed_early(self.id) from err
            status, headers = parse_head(head)
            body = b""
            if status != 101:
                body = await reader.read(_content_length(headers))
            check_upgrade(status, headers, key, body)
        except BaseException:
            writer.close()
            raise
        self._reader, self._writer = reader, writer
        self._task = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self._reader is not None and self._writer is not None
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                replies = self._session.receive(data)
                if replies:
                    self._writer.write(replies)
                if self._session.exit_code is not None:
                    self._done.set()
                if self._session.closed:
                    break
        except (OSError, asyncio.CancelledError):
            pass
        except BaseException as err:  # on_data raised: the caller sees it from wait()
            self._error = err
        finally:
            self._done.set()

    async def _send(self, frame: bytes) -> None:
        assert self._writer is not None
        self._writer.write(frame)
        await self._writer.drain()

    async def write(self, data: Union[str, bytes]) -> None:
        await self._send(self._session.data_frame(data))

    async def resize(self, cols: int, rows: int) -> None:
        await self._send(self._session.resize_frame(cols, rows))

    async def kill(self) -> None:
        await self._t.run(p.kill_pty(self._sandbox_id, self.id))

    async def wait(self, timeout: Optional[float] = None) -> int:
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"terminal {self.id} still runs after {timeout} s") from None
        if self._error is not None:
            raise self._error
        if self._session.exit_code is None:
            raise _closed_early(self.id)
        return self._session.exit_code

    async def close(self) -> None:
        if self._writer is None:
            return
        try:
            await self._send(self._session.close_frame())
        except OSError:
            pass
        self._writer.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> AsyncPty:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncSandboxPty:
    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    async def create(
        self,
        *,
        cols: int = 80,
        rows: int = 24,
        command: Command = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        on_data: OnData = None,
    ) -> AsyncPty:
        pty_id = await self._t.run(p.create_pty(self._id, pty_body(cols, rows, command, cwd, env)))
        return await AsyncPty(self._t, self._id, pty_id, on_data)._open()

    async def connect(self, pty_id: str, *, on_data: OnData = None) -> AsyncPty:
        return await AsyncPty(self._t, self._id, pty_id, on_data)._open()
