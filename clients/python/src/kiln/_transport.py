"""The two thin transports (httpx sync and httpx async) and the drivers that run operations.

They move bytes only: what a request is and what its answer means live in ``_protocol.py``.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import ssl
import threading
from contextlib import contextmanager
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Set

import httpx

from . import errors
from ._protocol import Call, Live, LiveStdin, Op, Receiver, StreamSource, T, UploadExchange, unavailable

DEFAULT_URL = "http://127.0.0.1:7420"


def resolve_settings(url: Optional[str], api_key: Optional[str]) -> tuple[str, str]:
    url = url if url is not None else os.environ.get("KILN_URL", DEFAULT_URL)
    api_key = api_key if api_key is not None else os.environ.get("KILN_API_KEY")
    if not url or not url.strip():
        raise errors.InvalidArgumentError("url must be the server's URL, e.g. http://127.0.0.1:7420", field="url")
    parsed = httpx.URL(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise errors.InvalidArgumentError(f"url must be http:// or https://, got {url!r}", field="url")
    if not api_key:
        raise errors.InvalidArgumentError(
            "api_key is required: pass api_key= or set KILN_API_KEY (kiln serve prints the admin key once)",
            field="api_key",
        )
    return url.strip().rstrip("/"), api_key


def _timeout(timeout: Optional[float]) -> httpx.Timeout:
    # Reads have no limit by default: a command's own timeout_ms is enforced by the server.
    return httpx.Timeout(timeout, connect=10.0 if timeout is None else min(10.0, timeout))


def _headers(call: Call, api_key: str) -> Dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "user-agent": "kiln-sdk-python/0.1.0", **call.headers()}


def _socket_of(response: httpx.Response) -> Optional[socket.socket]:
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: Optional[socket.socket]) -> None:
    """Ends a connection under the reader's feet: its blocked read sees the end at once."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _Exchange:
    """One call on httpx, the parts both transports share: the request's arguments, the answer
    handed to the call's receiver, failures mapped to ``KilnError``, the steering attached."""

    def __init__(self, url: str, api_key: str, call: Call, live: Optional[_LiveBase], body: Any) -> None:
        self.url = url
        self.call = call
        self.live = live
        self.request: Dict[str, Any] = dict(
            method=call.method, url=call.path, params=list(call.params), headers=_headers(call, api_key), content=body
        )
        self._receiver: Optional[Receiver] = None

    def answer(self, response: httpx.Response) -> Receiver:
        if self.live is not None:
            self.live.bind(response)
        self._receiver = self.call.receive(response.status_code, response.headers)
        return self._receiver

    @contextmanager
    def guard(self) -> Iterator[None]:
        steering = self.call.steering
        try:
            if steering is not None and self.live is not None:
                steering.attach(self.live)
            yield
        except httpx.TransportError as err:
            self._abort()
            raise unavailable(self.url, err) from err
        except BaseException:
            self._abort()
            raise
        finally:
            if steering is not None and self.live is not None:
                steering.detach()
                self.live.close()

    def _abort(self) -> None:
        if self._receiver is not None:
            self._receiver.abort()


class _LiveBase(Live):
    """The stream's socket, once its answer has begun: a cut before that waits for it."""

    def __init__(self) -> None:
        self._sock: Optional[socket.socket] = None
        self._cut = False
        self._closed = False

    def bind(self, response: httpx.Response) -> None:
        self._sock = _socket_of(response)
        if self._cut:
            _shutdown(self._sock)

    def close(self) -> None:
        raise NotImplementedError

    def _do_cut(self) -> None:
        if not self._closed:
            self._cut = True
            _shutdown(self._sock)


class _SyncLive(_LiveBase):
    """Side calls on threads of their own (the caller's thread reads the stream)."""

    def __init__(self, transport: SyncTransport) -> None:
        super().__init__()
        self._t = transport
        self._lock = threading.Lock()
        self._timers: List[threading.Timer] = []

    def spawn(self, call: Call, on_error: Callable[[BaseException], None]) -> None:
        def run() -> None:
            try:
                self._t.perform(call)
            except Exception as err:
                on_error(err)

        threading.Thread(target=run, name="kiln-exec-side", daemon=True).start()

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, fn)
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.append(timer)
        timer.start()

    def bind(self, response: httpx.Response) -> None:
        with self._lock:
            super().bind(response)

    def cut(self) -> None:
        with self._lock:
            self._do_cut()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._sock = None
        for timer in self._timers:
            timer.cancel()


class _AsyncLive(_LiveBase):
    """Side calls as tasks on the client's loop; a cancel from another thread hops onto it."""

    is_async = True

    def __init__(self, transport: AsyncTransport) -> None:
        super().__init__()
        self._t = transport
        self._loop = asyncio.get_running_loop()
        self._tasks: Set[asyncio.Task[None]] = set()
        self._handles: List[asyncio.TimerHandle] = []

    def _soon(self, fn: Callable[[], None]) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def spawn(self, call: Call, on_error: Callable[[BaseException], None]) -> None:
        async def run() -> None:
            try:
                await self._t.perform(call)
            except Exception as err:
                on_error(err)

        def start() -> None:
            if not self._closed:
                task = self._loop.create_task(run())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._soon(start)

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        def arm() -> None:
            if not self._closed:
                self._handles.append(self._loop.call_later(seconds, fn))

        self._soon(arm)

    def cut(self) -> None:
        self._soon(self._do_cut)

    def close(self) -> None:
        self._closed = True
        self._sock = None
        for task in self._tasks:
            task.cancel()
        for handle in self._handles:
            handle.cancel()


class SyncTransport:
    def __init__(self, url: str, api_key: str, timeout: Optional[float], limits: httpx.Limits) -> None:
        self.url = url
        self.api_key = api_key
        self._read_timeout = timeout
        self._client = httpx.Client(base_url=url, timeout=_timeout(timeout), limits=limits)

    def perform(self, call: Call) -> Any:
        content = call.content()
        if isinstance(content, StreamSource):
            return self._upload(call, content)
        body = content.chunks() if isinstance(content, LiveStdin) else content
        ex = _Exchange(self.url, self.api_key, call, _SyncLive(self) if call.steering else None, body)
        with ex.guard():
            with self._client.stream(**ex.request) as response:
                receiver = ex.answer(response)
                for chunk in response.iter_bytes():
                    receiver.feed(chunk)
            return receiver.finish()

    def _upload(self, call: Call, source: StreamSource) -> Any:
        ex = UploadExchange(self.url, self.api_key, call)
        try:
            sock = socket.create_connection((ex.host, ex.port), timeout=30)
        except OSError as err:
            raise unavailable(self.url, err) from err
        try:
            if ex.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=ex.host)
            sock.settimeout(self._read_timeout)
            try:
                sock.sendall(ex.head)
                for chunk in source.chunks():
                    if select.select([sock], [], [], 0)[0]:
                        break  # the server answered before the whole body: read that answer
                    sock.sendall(ex.chunk(chunk))
                else:
                    sock.sendall(ex.end())
            except (BrokenPipeError, ConnectionResetError):
                pass  # it stopped reading: its answer (if any) is waiting to be read
            while not ex.done:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                ex.receive(data)
            return ex.result
        except errors.KilnError:
            raise  # (kiln.FileNotFoundError is an OSError too)
        except OSError as err:
            raise unavailable(self.url, err) from err
        finally:
            sock.close()

    def run(self, op: Op[T]) -> T:
        """Drives an operation: each yielded call performed, its answer (or error) sent back."""
        try:
            call = next(op)
            while True:
                try:
                    answer = self.perform(call)
                except errors.KilnError as err:
                    call = op.throw(err)
                else:
                    call = op.send(answer)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def close(self) -> None:
        self._client.close()


async def _achunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Reads happen off the event loop (a file, the caller's iterable), one chunk at a time.
    while True:
        chunk = await asyncio.to_thread(next, chunks, b"")
        if not chunk:
            return
        yield chunk


class AsyncTransport:
    def __init__(self, url: str, api_key: str, timeout: Optional[float], limits: httpx.Limits) -> None:
        self.url = url
        self.api_key = api_key
        self._read_timeout = timeout
        self._client = httpx.AsyncClient(base_url=url, timeout=_timeout(timeout), limits=limits)

    async def perform(self, call: Call) -> Any:
        content = call.content()
        if isinstance(content, StreamSource):
            return await self._upload(call, content)
        body: Any = content
        if isinstance(content, LiveStdin):
            body = content.achunks() if content.is_async else _achunks(content.chunks())
        ex = _Exchange(self.url, self.api_key, call, _AsyncLive(self) if call.steering else None, body)
        with ex.guard():
            async with self._client.stream(**ex.request) as response:
                receiver = ex.answer(response)
                async for chunk in response.aiter_bytes():
                    receiver.feed(chunk)
            return receiver.finish()

    async def _upload(self, call: Call, source: StreamSource) -> Any:
        ex = UploadExchange(self.url, self.api_key, call)
        try:
            reader, writer = await asyncio.open_connection(
                ex.host, ex.port, ssl=ssl.create_default_context() if ex.tls else None
            )
        except OSError as err:
            raise unavailable(self.url, err) from err
        pending = asyncio.ensure_future(reader.read(65536))
        try:
            try:
                writer.write(ex.head)
                async for chunk in _achunks(source.chunks()):
                    if pending.done():
                        break  # the server answered before the whole body: read that answer
                    writer.write(ex.chunk(chunk))
                    await writer.drain()
                else:
                    writer.write(ex.end())
                    await writer.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it stopped reading: its answer (if any) is waiting to be read
            while not ex.done:
                try:
                    data = await asyncio.wait_for(pending, self._read_timeout)
                except ConnectionResetError:
                    data = b""
                ex.receive(data)
                if not ex.done:
                    pending = asyncio.ensure_future(reader.read(65536))
            return ex.result
        except errors.KilnError:
            raise  # (kiln.FileNotFoundError is an OSError too)
        except (OSError, asyncio.TimeoutError) as err:
            raise unavailable(self.url, err) from err
        finally:
            if not pending.done():
                pending.cancel()
            writer.close()

    async def run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                try:
                    answer = await self.perform(call)
                except errors.KilnError as err:
                    call = op.throw(err)
                else:
                    call = op.send(answer)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._client.aclose()
