# An operation receives each answer through `yield` (typed Any): its return is its declared type.
# mypy: disable-error-code="no-any-return"
"""The protocol, once, without I/O (sans-IO): what to send and what an answer means.

Every SDK call is an *operation*: a generator that yields :class:`Call` objects (one HTTP
request each) and receives each call's parsed answer back (or has the call's ``KilnError``
thrown into it), then returns the call's result. Multi-step calls (``get_or_create``,
``files.exists``, directory ``upload``/``download``) are plain control flow inside one
generator. The two transports in ``_transport.py`` (httpx sync and httpx async) only move bytes:
they send a call's request, hand the answer's status, headers and body chunks to the call's
:class:`Receiver`, and return what the receiver finishes with. So ``Kiln`` and ``AsyncKiln``
cannot drift apart: they run the same operations.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import (
    IO,
    Any,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import quote, urlencode, urlsplit

import h11

from . import errors
from .types import (
    CommandResult,
    Execution,
    ExecutionError,
    FileEntry,
    Health,
    Language,
    NetworkPolicy,
    Preview,
    ProcessInfo,
    ProcessLogs,
    ProcessStarted,
    Result,
    SandboxInfo,
    SnapshotInfo,
    VolumeInfo,
    _camel,
)

T = TypeVar("T")
Op = Generator["Call", Any, T]

CHUNK_BYTES = 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024
#: after a cancel, how long a call waits for the server to report the command killed before it
#: cuts the stream (as the TypeScript client)
CANCEL_WAIT_SECONDS = 5.0


# --------------------------------------------------------------------------------------------
# Calls and receivers


class Receiver:
    """Consumes one answer's body, chunk by chunk, and makes the call's result."""

    def feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> Any:
        raise NotImplementedError

    def abort(self) -> None:
        """The transfer failed midway: drop what was kept (temp files)."""


class BufferReceiver(Receiver):
    def __init__(self, parse: Callable[[bytes], Any]) -> None:
        self._chunks: List[bytes] = []
        self._parse = parse

    def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    def finish(self) -> Any:
        return self._parse(b"".join(self._chunks))


class ErrorReceiver(Receiver):
    """A failed answer: keeps at most 64 KiB of its body, then raises its ``KilnError``."""

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self._status = status
        self._retry_after = _parse_retry_after(headers.get("retry-after"))
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        room = MAX_ERROR_BODY_BYTES - len(self._body)
        if room > 0:
            self._body += chunk[:room]

    def finish(self) -> Any:
        raise error_from_response(self._status, bytes(self._body), self._retry_after)


class FileReceiver(Receiver):
    """Streams a file's bytes into a temp file next to ``local``; renamed over it when complete."""

    def __init__(self, local: str, parse: Callable[[], Any]) -> None:
        directory = os.path.dirname(os.path.abspath(local)) or "."
        fd, self._tmp = tempfile.mkstemp(prefix=".kiln-", suffix=".part", dir=directory)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._local = local
        self._parse = parse

    def feed(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def finish(self) -> Any:
        self._file.close()
        os.replace(self._tmp, self._local)
        return self._parse()

    def abort(self) -> None:
        self._file.close()
        try:
            os.unlink(self._tmp)
        except OSError:
            pass


class SSEReceiver(Receiver):
    """Server-Sent Events: each ``data:`` a JSON object, dispatched as it arrives.

    ``on_event`` gets every event; it returns the call's result for the final event (``result``,
    ``execution``) and ``None`` for the others. An ``error`` event raises its ``KilnError``.
    """

    def __init__(self, on_event: Callable[[Dict[str, Any]], Any]) -> None:
        self._on_event = on_event
        self._pending = b""
        self._data: List[str] = []
        self._final: Any = None
        self._done = False

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                self._dispatch()
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append((value[1:] if value.startswith(b" ") else value).decode("utf-8"))
            # comments (":"), event:, id:, retry: carry nothing here

    def _dispatch(self) -> None:
        if not self._data:
            return
        event = json.loads("\n".join(self._data))
        self._data = []
        if self._done or not isinstance(event, dict):
            return
        if event.get("type") == "error":
            body = event.get("error") or {}
            raise _error(
                body.get("code") or "INTERNAL", body.get("message") or "the stream failed", None, body.get("field")
            )
        final = self._on_event(event)
        if final is not None:
            self._final = final
            self._done = True

    def finish(self) -> Any:
        self.feed(b"\n\n")
        if not self._done:
            raise errors.ServerUnavailableError("The server's event stream ended before its final event")
        return self._final


@dataclass
class Call:
    """One HTTP request of an operation, and how to read its answer."""

    method: str
    path: str
    params: Sequence[Tuple[str, str]] = ()
    json: Any = None
    #: a raw request body: bytes, a :class:`StreamSource` sent as it is read, or a live stdin
    body: Union[bytes, StreamSource, LiveStdin, None] = None
    accept: Optional[str] = None
    #: makes the receiver of a successful answer
    receiver: Callable[[], Receiver] = field(default=lambda: BufferReceiver(_parse_none))
    #: a stream steered while it runs (live stdin, cancel): the transport attaches its side
    steering: Optional[Steering] = None

    def headers(self) -> Dict[str, str]:
        headers: Dict[str, str] = {}
        if self.accept:
            headers["accept"] = self.accept
        if self.json is not None:
            headers["content-type"] = "application/json"
        elif self.body is not None:
            headers["content-type"] = "application/octet-stream"
            if isinstance(self.body, StreamSource) and self.body.size is not None:
                # Declared, so the server can refuse an upload over its limit before it is sent.
                headers["content-length"] = str(self.body.size)
        return headers

    def content(self) -> Union[bytes, StreamSource, LiveStdin, None]:
        if self.json is not None:
            return json.dumps(self.json, separators=(",", ":")).encode("utf-8")
        return self.body

    def receive(self, status: int, headers: Mapping[str, str]) -> Receiver:
        if status >= 400:
            return ErrorReceiver(status, headers)
        return self.receiver()


class StreamSource:
    """A request body read in 1 MiB chunks from a local file (or any binary file object)."""

    def __init__(self, path: Optional[str] = None, file: Optional[IO[bytes]] = None) -> None:
        self.path = path
        self.file = file
        self.size: Optional[int] = os.path.getsize(path) if path is not None else None

    def chunks(self) -> Iterator[bytes]:
        if self.path is not None:
            with open(self.path, "rb") as f:
                yield from iter(lambda: f.read(CHUNK_BYTES), b"")
        elif self.file is not None:
            yield from iter(lambda: self.file.read(CHUNK_BYTES), b"")  # type: ignore[union-attr]


class UploadExchange:
    """A streamed upload as one HTTP/1.1 exchange on its own connection (h11, sans-IO).

    Unlike a general HTTP client, it notices an answer that comes *before* the body is sent
    (the server refuses an upload over its limit, or to a missing sandbox, without reading it)
    and reports that answer instead of the broken pipe that follows it.
    """

    def __init__(self, base_url: str, api_key: str, call: Call) -> None:
        u = urlsplit(base_url)
        target = u.path.rstrip("/") + call.path + ("?" + urlencode(list(call.params)) if call.params else "")
        self.host = u.hostname or "127.0.0.1"
        self.tls = u.scheme == "https"
        self.port = u.port or (443 if self.tls else 80)
        self._call = call
        self._conn = h11.Connection(h11.CLIENT)
        self._receiver: Optional[Receiver] = None
        headers = {
            "host": u.netloc,
            "authorization": f"Bearer {api_key}",
            "connection": "close",
            **call.headers(),
        }
        if "content-length" not in headers:
            headers["transfer-encoding"] = "chunked"
        request = h11.Request(method=call.method, target=target or "/", headers=list(headers.items()))
        self.head: bytes = self._conn.send(request) or b""
        self.done = False
        self.result: Any = None

    def chunk(self, data: bytes) -> bytes:
        return self._conn.send(h11.Data(data=data)) or b""

    def end(self) -> bytes:
        return self._conn.send(h11.EndOfMessage()) or b""

    @property
    def answered(self) -> bool:
        """The answer's head has arrived (perhaps early: stop sending)."""
        return self._receiver is not None

    def receive(self, data: bytes) -> None:
        """Bytes from the socket (``b""`` at its end); sets ``done`` and ``result`` at the end."""
        self._conn.receive_data(data)
        while not self.done:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as err:
                raise errors.ServerUnavailableError(f"The server's answer to the upload was cut off ({err})") from err
            if event is h11.NEED_DATA:
                if data == b"" and self._receiver is None:
                    raise errors.ServerUnavailableError("The server closed the connection without answering the upload")
                return
            if isinstance(event, h11.Response):
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                self._receiver = self._call.receive(event.status_code, headers)
            elif isinstance(event, h11.Data) and self._receiver is not None:
                self._receiver.feed(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                if self._receiver is None:
                    raise errors.ServerUnavailableError("The server closed the connection without answering the upload")
                self.done = True
                self.result = self._receiver.finish()


# --------------------------------------------------------------------------------------------
# Steering a running exec: cancellation and live stdin


class CancelToken:
    """Cancels the calls it is passed to: ``sandbox.exec(..., cancel=token)`` and
    ``sandbox.run_code(..., cancel=token)``, from any thread (or the event loop).

    A cancelled ``exec`` asks the server to kill the command (``POST …/exec/{execId}/cancel``)
    and returns its result (``status="killed"``) once the command is gone; a cancelled
    ``run_code`` closes its stream (the server then stops the cell) and returns an
    ``Execution`` with ``status="killed"``. Cancelling after the call returned does nothing; a
    call given a token that is already cancelled raises :class:`~kiln.AbortedError` without
    sending anything. One token may serve many calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._listeners: List[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()

    def _listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Calls ``listener`` on cancel (at once if cancelled already); returns the unsubscribe."""
        with self._lock:
            if not self._cancelled:
                self._listeners.append(listener)
                return lambda: self._forget(listener)
        listener()
        return lambda: None

    def _forget(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self._cancelled})"


#: what ``exec(stdin=...)`` takes: text or bytes (sent in the request), or chunks fed while the
#: command runs (an iterable or async iterable of bytes or str, or a binary file object)
Stdin = Union[str, bytes, Iterable[Union[bytes, str]], AsyncIterable[Union[bytes, str]], IO[bytes], None]


class LiveStdin:
    """A command's stdin, streamed while it runs as the body of ``POST …/exec/{execId}/stdin``.

    The user's chunks are read one at a time as the request is sent (the server reads only as fast
    as the command takes them); once the command has ended, no further chunk is read.
    """

    def __init__(self, source: Any) -> None:
        self._source = source
        self.stopped = False

    @property
    def is_async(self) -> bool:
        return hasattr(self._source, "__aiter__") and not hasattr(self._source, "__iter__")

    @staticmethod
    def _bytes(chunk: Union[bytes, str]) -> bytes:
        return chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)

    def chunks(self) -> Iterator[bytes]:
        source = self._source
        if isinstance(source, bytes):
            chunks: Iterable[Union[bytes, str]] = [source]
        elif hasattr(source, "read"):
            chunks = _reads(source)
        else:
            chunks = source
        for chunk in chunks:
            if self.stopped:
                return
            if chunk:
                yield self._bytes(chunk)

    async def achunks(self) -> AsyncIterator[bytes]:
        """The chunks of an async iterable (a sync one is read with :meth:`chunks`)."""
        async for chunk in self._source:
            if self.stopped:
                return
            if chunk:
                yield self._bytes(chunk)


def _reads(file: Any) -> Iterator[Union[bytes, str]]:
    # Until the end, whatever the file gives (a text file's "" ends it as a binary file's b"").
    while True:
        chunk = file.read(CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


def _split_stdin(stdin: Stdin) -> Tuple[Optional[str], Optional[LiveStdin]]:
    """Text goes in the request (as the API takes it); anything else streams beside it."""
    if stdin is None or isinstance(stdin, str):
        return stdin, None
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        try:
            return bytes(stdin).decode("utf-8"), None
        except UnicodeDecodeError:
            return None, LiveStdin(bytes(stdin))
    if not (hasattr(stdin, "__iter__") or hasattr(stdin, "__aiter__") or hasattr(stdin, "read")):
        raise errors.InvalidArgumentError(
            "stdin must be str, bytes, an iterable or async iterable of bytes, or a binary file", field="stdin"
        )
    return None, LiveStdin(stdin)


class Live:
    """What a transport lends a steered stream while it runs (each transport implements it)."""

    #: the transport runs on an event loop (an async stdin can be read)
    is_async = False

    def spawn(self, call: Call, on_error: Callable[[BaseException], None]) -> None:
        """Performs ``call`` beside the stream; ``on_error`` gets its failure."""
        raise NotImplementedError

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        """Runs ``fn`` after ``seconds`` unless the stream has ended by then."""
        raise NotImplementedError

    def cut(self) -> None:
        """Closes the stream's connection now (its call then ends with ``ServerUnavailableError``)."""
        raise NotImplementedError


class Steering:
    """A streamed exec or cell steered while it runs: its live stdin and its cancellation.

    Sans-IO: it decides which side calls to make (stdin, cancel) and when to cut the stream; the
    transport's :class:`Live` makes them. ``exec_id`` arrives with the stream's ``started`` event.
    """

    def __init__(
        self, sandbox_id: str, stdin: Optional[LiveStdin], token: Optional[CancelToken], server_cancel: bool
    ) -> None:
        self._sandbox_id = sandbox_id
        self._stdin = stdin
        self._token = token
        self._server_cancel = server_cancel
        self._lock = threading.Lock()
        self._live: Optional[Live] = None
        self._unlisten: Callable[[], None] = lambda: None
        self._cancelling = False
        self.exec_id: Optional[str] = None
        #: the stream was cut on purpose: its end is a killed result, not an error
        self.cut = False

    def attach(self, live: Live) -> None:
        if self._stdin is not None and self._stdin.is_async and not live.is_async:
            raise errors.InvalidArgumentError(
                "stdin: an async iterable needs AsyncKiln; Kiln takes an iterable", field="stdin"
            )
        self._live = live
        if self._token is not None:
            self._unlisten = self._token._listen(self._on_cancel)

    def detach(self) -> None:
        """The stream has ended: no more cancels, no more stdin chunks read."""
        self._unlisten()
        with self._lock:
            self._live = None
        if self._stdin is not None:
            self._stdin.stopped = True

    def started(self, exec_id: str) -> None:
        with self._lock:
            self.exec_id = exec_id
            live, cancelling = self._live, self._cancelling
        if live is None:
            return
        if cancelling:
            self._cancel_on_server(live, exec_id)
        elif self._stdin is not None:
            path = f"{_sandbox(self._sandbox_id)}/exec/{_seg(exec_id)}/stdin"
            # Its outcome is not the caller's: the command's result says what happened.
            live.spawn(Call("POST", path, body=self._stdin), lambda err: None)

    def _on_cancel(self) -> None:
        with self._lock:
            self._cancelling = True
            live, exec_id = self._live, self.exec_id
        if live is None:
            return
        if self._server_cancel and exec_id is not None:
            self._cancel_on_server(live, exec_id)
        elif not self._server_cancel:
            self._cut()
        # else: the started event (the stream's first) sends the cancel

    def _cancel_on_server(self, live: Live, exec_id: str) -> None:
        if self._stdin is not None:
            self._stdin.stopped = True
        live.spawn(cancel_call(self._sandbox_id, exec_id), self._cancel_failed)
        live.later(CANCEL_WAIT_SECONDS, self._cut)

    def _cancel_failed(self, err: BaseException) -> None:
        # 404: the command has just ended, its result is on the way; else the stream is cut.
        if not isinstance(err, errors.NotFoundError):
            self._cut()

    def _cut(self) -> None:
        with self._lock:
            live = self._live
            if live is None:
                return
            self.cut = True
        live.cut()


class _Output:
    """What a stream delivered so far: the result of a call cut off midway."""

    def __init__(self, cap: Optional[int] = None) -> None:
        self.stdout = ""
        self.stderr = ""
        self.results: List[Result] = []
        self.truncated = False
        self._cap = cap
        self._started = time.monotonic()

    def add(self, kind: str, data: str) -> None:
        text = (self.stdout if kind == "stdout" else self.stderr) + data
        if self._cap is not None and len(text) > self._cap:
            text, self.truncated = text[: self._cap], True
        if kind == "stdout":
            self.stdout = text
        else:
            self.stderr = text

    @property
    def duration_ms(self) -> float:
        return round((time.monotonic() - self._started) * 1000)


def cancel_call(sandbox_id: str, exec_id: str) -> Call:
    return Call("POST", f"{_sandbox(sandbox_id)}/exec/{_seg(exec_id)}/cancel")


def cancel_exec(sandbox_id: str, exec_id: str) -> Op[None]:
    """Kills a running exec by the id of its stream's ``started`` event (404 once it has ended)."""
    return (yield cancel_call(sandbox_id, exec_id))


# --------------------------------------------------------------------------------------------
# Answers and errors


def _parse_none(_body: bytes) -> None:
    return None


def _json(parse: Callable[[Any], T]) -> Callable[[], Receiver]:
    return lambda: BufferReceiver(lambda body: parse(json.loads(body)))


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _error(
    code: str, message: str, status: Optional[int], field: Optional[str] = None, retry_after: Optional[float] = None
) -> errors.KilnError:
    cls = errors.error_class_for(code)
    return cls(message, code=code, status=status, field=field, retry_after=retry_after)


def error_from_response(status: int, body: bytes, retry_after: Optional[float] = None) -> errors.KilnError:
    """The ``KilnError`` for a failed answer: its error body's code, else one by status."""
    try:
        parsed = json.loads(body)
        err = parsed["error"]
        code = err["code"]
        if isinstance(code, str) and code:
            message = err.get("message") if isinstance(err.get("message"), str) else code
            field = err.get("field") if isinstance(err.get("field"), str) else None
            return _error(code, message, status, field, retry_after)
    except (ValueError, KeyError, TypeError):
        pass
    excerpt = body.decode("utf-8", "replace").strip()[:200]
    message = f"The Kiln server answered HTTP {status}" + (f": {excerpt}" if excerpt else "")
    return _error(errors.code_for_status(status), message, status, None, retry_after)


def unavailable(url: str, cause: BaseException) -> errors.ServerUnavailableError:
    return errors.ServerUnavailableError(
        f"No Kiln server answers at {url} ({type(cause).__name__}: {cause}): "
        "start one with `kiln serve`, or check KILN_URL"
    )


# --------------------------------------------------------------------------------------------
# Requests


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _sandbox(sandbox_id: str) -> str:
    return f"/v1/sandboxes/{_seg(sandbox_id)}"


def _camel_keys(value: Mapping[str, Any]) -> Dict[str, Any]:
    return {_camel(k): v for k, v in value.items()}


def create_body(options: Mapping[str, Any]) -> Dict[str, Any]:
    """``CreateSandboxOptions`` from keyword arguments (``auto_stop_ms`` -> ``autoStopMs``).

    Only the option names are converted: labels and env are the user's own keys.
    """
    body: Dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "resources":
            value = _camel_keys(value)
        elif key == "volumes":
            value = [_camel_keys(v) for v in value]
        body[_camel(key)] = value
    return body


def health() -> Op[Health]:
    return (yield Call("GET", "/healthz", receiver=_json(Health.from_json)))


def create(options: Mapping[str, Any]) -> Op[SandboxInfo]:
    return (yield Call("POST", "/v1/sandboxes", json=create_body(options), receiver=_json(SandboxInfo.from_json)))


def create_sandbox(
    *,
    name: Optional[str] = None,
    image: Optional[str] = None,
    snapshot: Optional[str] = None,
    language: Optional[Language] = None,
    labels: Optional[Mapping[str, str]] = None,
    env: Optional[Mapping[str, str]] = None,
    resources: Optional[Mapping[str, float]] = None,
    network: Optional[NetworkPolicy] = None,
    volumes: Optional[Sequence[Mapping[str, Any]]] = None,
    auto_stop_ms: Optional[int] = None,
    auto_delete_ms: Optional[int] = None,
) -> Op[SandboxInfo]:
    """A new sandbox. ``resources`` takes ``cpus``, ``memory_mb``, ``disk_mb``, ``pids``;
    ``volumes`` entries ``{"volume", "mount_path", "read_only"?}``. ``with kiln.create() as sb:``
    (``async with`` on ``AsyncKiln``) deletes it on exit."""
    options = dict(locals())  # the keyword arguments, as given (None: the server's default)
    return (yield from create(options))


def get(id_or_name: str) -> Op[SandboxInfo]:
    """The sandbox with this id or name; ``SandboxNotFoundError`` when there is none."""
    return (yield Call("GET", _sandbox(id_or_name), receiver=_json(SandboxInfo.from_json)))


def list_sandboxes(labels: Optional[Mapping[str, str]] = None) -> Op[List[SandboxInfo]]:
    """Sandboxes, those carrying every label in ``labels`` when given."""
    params = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
    return (
        yield Call(
            "GET",
            "/v1/sandboxes",
            params=params,
            receiver=_json(lambda d: [SandboxInfo.from_json(s) for s in d["sandboxes"]]),
        )
    )


def get_or_create(name: str, **options: Any) -> Op[SandboxInfo]:
    """The sandbox named ``name``, created with ``options`` (as ``create``) if absent (race-safe)."""
    try:
        return (yield from get(name))
    except errors.SandboxNotFoundError:
        pass
    try:
        return (yield from create({**options, "name": name}))
    except errors.ConflictError:
        # Someone else made it between our get and our create.
        return (yield from get(name))


def delete(sandbox_id: str) -> Op[None]:
    return (yield Call("DELETE", _sandbox(sandbox_id)))


def lifecycle(sandbox_id: str, action: str) -> Op[SandboxInfo]:
    return (yield Call("POST", f"{_sandbox(sandbox_id)}/{action}", receiver=_json(SandboxInfo.from_json)))


def _stream_handler(
    final_type: str,
    parse_final: Callable[[Any], Any],
    on_stdout: Optional[Callable[[str], Any]],
    on_stderr: Optional[Callable[[str], Any]],
    on_result: Optional[Callable[[Result], Any]] = None,
    output: Optional[_Output] = None,
    steering: Optional[Steering] = None,
) -> Callable[[Dict[str, Any]], Any]:
    def on_event(event: Dict[str, Any]) -> Any:
        kind = event.get("type")
        if kind in ("stdout", "stderr"):
            if output is not None:
                output.add(kind, event["data"])
            callback = on_stdout if kind == "stdout" else on_stderr
            if callback:
                callback(event["data"])
        elif kind == "display":
            result = Result.from_json(event["result"])
            if output is not None:
                output.results.append(result)
            if on_result:
                on_result(result)
        elif kind == "started":
            if steering is not None and isinstance(event.get("execId"), str):
                steering.started(event["execId"])
        elif kind == final_type:
            return parse_final(event[final_type])
        return None

    return on_event


def _sse_call(path: str, body: Dict[str, Any], handler: Callable[[Dict[str, Any]], Any], **kw: Any) -> Call:
    return Call("POST", path, json=body, accept="text/event-stream", receiver=lambda: SSEReceiver(handler), **kw)


def _optional(body: Dict[str, Any], **values: Any) -> Dict[str, Any]:
    body.update({_camel(k): v for k, v in values.items() if v is not None})
    return body


def _not_cancelled(token: Optional[CancelToken], what: str) -> None:
    if token is not None and token.cancelled:
        raise errors.AbortedError(f"{what} was aborted: its CancelToken was cancelled before it began")


def _stream(
    path: str,
    body: Dict[str, Any],
    handler: Callable[[Dict[str, Any]], Any],
    steering: Optional[Steering],
    cut_result: Callable[[], T],
) -> Op[T]:
    """A streamed call (SSE); one cut on purpose (a cancel) ends with ``cut_result()``."""
    try:
        return (yield _sse_call(path, body, handler, steering=steering))
    except errors.ServerUnavailableError:
        if steering is None or not steering.cut:
            raise
        return cut_result()


def exec_(
    sandbox_id: str,
    command: Union[str, Sequence[str]],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdin: Stdin = None,
    timeout_ms: Optional[int] = None,
    max_output_bytes: Optional[int] = None,
    on_stdout: Optional[Callable[[str], Any]] = None,
    on_stderr: Optional[Callable[[str], Any]] = None,
    cancel: Optional[CancelToken] = None,
) -> Op[CommandResult]:
    """Runs a command: a string through ``sh -c``, a list as argv. A non-zero exit is data
    (``status="error"``), not an exception. ``on_stdout``/``on_stderr`` receive output as it
    arrives (the call then streams over SSE).

    ``stdin`` is text or bytes (sent with the request), or chunks fed to the command while it runs:
    an iterable of bytes/str (an async iterable too with ``AsyncKiln``) or a binary file; the
    command reads EOF when it ends. ``cancel`` (a :class:`CancelToken`) kills the command when
    cancelled: the result then has ``status="killed"``."""
    text, live = _split_stdin(stdin)
    body = _optional(
        {"command": _command(command)},
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=text,
        timeout_ms=timeout_ms,
        max_output_bytes=max_output_bytes,
    )
    path = f"{_sandbox(sandbox_id)}/exec"
    if live is None and cancel is None and on_stdout is None and on_stderr is None:
        return (yield Call("POST", path, json=body, receiver=_json(CommandResult.from_json)))
    steering = None
    if live is not None or cancel is not None:
        _not_cancelled(cancel, "exec")
        # The stream names the command (started event): its stdin and its cancel go beside it.
        body["stdinStream" if live is not None else "cancellable"] = True
        steering = Steering(sandbox_id, live, cancel, server_cancel=True)
    out = _Output(max_output_bytes)
    kept = out if steering is not None else None  # what came, for a result of a cut stream
    handler = _stream_handler("result", CommandResult.from_json, on_stdout, on_stderr, None, kept, steering)

    def killed() -> CommandResult:  # cut off mid-command (the server then kills it), as locally
        return CommandResult(137, out.stdout, out.stderr, "killed", out.truncated, out.duration_ms)

    return (yield from _stream(path, body, handler, steering, killed))


def run_code(
    sandbox_id: str,
    code: str,
    *,
    language: Optional[Language] = None,
    context: Optional[str] = None,
    timeout_ms: Optional[int] = None,
    on_stdout: Optional[Callable[[str], Any]] = None,
    on_stderr: Optional[Callable[[str], Any]] = None,
    on_result: Optional[Callable[[Result], Any]] = None,
    cancel: Optional[CancelToken] = None,
) -> Op[Execution]:
    """Runs a notebook cell: state persists per ``(language, context)``; the value of a final
    expression is a result. The user's error is ``Execution.error``, not an exception.
    ``cancel`` (a :class:`CancelToken`) stops the cell when cancelled (``status="killed"``)."""
    body = _optional({"code": code}, language=language, context=context, timeout_ms=timeout_ms)
    path = f"{_sandbox(sandbox_id)}/code"
    if cancel is None and on_stdout is None and on_stderr is None and on_result is None:
        return (yield Call("POST", path, json=body, receiver=_json(Execution.from_json)))
    _not_cancelled(cancel, "run_code")
    # A cell has no cancel route: a cancel closes its stream, and the server stops the cell.
    steering = None if cancel is None else Steering(sandbox_id, None, cancel, server_cancel=False)
    out = _Output()
    kept = out if steering is not None else None
    handler = _stream_handler("execution", Execution.from_json, on_stdout, on_stderr, on_result, kept, steering)

    def killed() -> Execution:
        cancelled = ExecutionError("Cancelled", "execution was cancelled (aborted by the caller)", "")
        return Execution(out.results, out.stdout, out.stderr, "killed", False, out.duration_ms, cancelled)

    return (yield from _stream(path, body, handler, steering, killed))


# Files


def _files(sandbox_id: str, suffix: str = "") -> str:
    return f"{_sandbox(sandbox_id)}/files{suffix}"


def read(sandbox_id: str, path: str) -> Op[bytes]:
    """The file's bytes; ``kiln.FileNotFoundError`` when absent."""
    return (yield Call("GET", _files(sandbox_id), params=[("path", path)], receiver=lambda: BufferReceiver(bytes)))


def read_text(sandbox_id: str, path: str, encoding: str = "utf-8") -> Op[str]:
    return (yield from read(sandbox_id, path)).decode(encoding)


def _put(sandbox_id: str, path: str, body: Union[bytes, StreamSource]) -> Call:
    return Call("PUT", _files(sandbox_id), params=[("path", path)], body=body, receiver=_json(FileEntry.from_json))


def write(sandbox_id: str, path: str, content: Union[str, bytes, IO[bytes]]) -> Op[FileEntry]:
    """Writes a file (parents created): str (UTF-8), bytes, or a binary file object (streamed)."""
    if isinstance(content, str):
        body: Union[bytes, StreamSource] = content.encode("utf-8")
    elif isinstance(content, (bytes, bytearray, memoryview)):
        body = bytes(content)
    else:
        body = StreamSource(file=content)
    return (yield _put(sandbox_id, path, body))


def list_files(sandbox_id: str, path: str = ".") -> Op[List[FileEntry]]:
    return (
        yield Call(
            "GET",
            _files(sandbox_id, "/list"),
            params=[("path", path)],
            receiver=_json(lambda d: [FileEntry.from_json(e) for e in d["entries"]]),
        )
    )


def stat(sandbox_id: str, path: str) -> Op[FileEntry]:
    return (
        yield Call("GET", _files(sandbox_id, "/stat"), params=[("path", path)], receiver=_json(FileEntry.from_json))
    )


def exists(sandbox_id: str, path: str) -> Op[bool]:
    try:
        yield from stat(sandbox_id, path)
    except errors.FileNotFoundError:
        return False
    return True


def mkdir(sandbox_id: str, path: str) -> Op[FileEntry]:
    """Creates a directory and its parents (an existing one is fine)."""
    return (yield Call("POST", _files(sandbox_id, "/mkdir"), json={"path": path}, receiver=_json(FileEntry.from_json)))


def remove(sandbox_id: str, path: str, *, recursive: bool = False) -> Op[None]:
    params = [("path", path)] + ([("recursive", "true")] if recursive else [])
    return (yield Call("DELETE", _files(sandbox_id), params=params))


def _join(remote: str, name: str) -> str:
    return remote.rstrip("/") + "/" + name


def upload(sandbox_id: str, local_path: str, remote_path: str) -> Op[None]:
    """A local file or directory into the sandbox, streamed (never held whole in memory)."""
    local, remote = local_path, remote_path
    if not os.path.isdir(local):
        yield _put(sandbox_id, remote, StreamSource(path=local))
        return
    yield from mkdir(sandbox_id, remote)
    for root, dirs, files in os.walk(local):
        rel = os.path.relpath(root, local)
        base = remote if rel == "." else _join(remote, rel.replace(os.sep, "/"))
        for d in sorted(dirs):
            yield from mkdir(sandbox_id, _join(base, d))
        for f in sorted(files):
            full = os.path.join(root, f)
            if os.path.isfile(full):
                yield _put(sandbox_id, _join(base, f), StreamSource(path=full))


def _get_to(sandbox_id: str, remote: str, local: str) -> Call:
    return Call(
        "GET", _files(sandbox_id), params=[("path", remote)], receiver=lambda: FileReceiver(local, lambda: None)
    )


def download(sandbox_id: str, remote_path: str, local_path: str) -> Op[None]:
    """A file or directory out of the sandbox, streamed to disk; symlinks are not followed."""
    remote, local = remote_path, local_path
    entry = yield from stat(sandbox_id, remote)
    if entry.type != "directory":
        yield _get_to(sandbox_id, remote, local)
        return
    pending = [(remote, local)]
    while pending:
        remote_dir, local_dir = pending.pop()
        os.makedirs(local_dir, exist_ok=True)
        for child in (yield from list_files(sandbox_id, remote_dir)):
            target = os.path.join(local_dir, child.name)
            if child.type == "directory":
                pending.append((_join(remote_dir, child.name), target))
            elif child.type == "file":
                yield _get_to(sandbox_id, _join(remote_dir, child.name), target)


# Snapshots and volumes


def snapshot(sandbox_id: str, name: str) -> Op[SnapshotInfo]:
    return (
        yield Call(
            "POST", f"{_sandbox(sandbox_id)}/snapshots", json={"name": name}, receiver=_json(SnapshotInfo.from_json)
        )
    )


def list_snapshots() -> Op[List[SnapshotInfo]]:
    return (
        yield Call(
            "GET", "/v1/snapshots", receiver=_json(lambda d: [SnapshotInfo.from_json(s) for s in d["snapshots"]])
        )
    )


def delete_snapshot(name: str) -> Op[None]:
    return (yield Call("DELETE", f"/v1/snapshots/{_seg(name)}"))


def create_volume(name: str) -> Op[VolumeInfo]:
    return (yield Call("POST", "/v1/volumes", json={"name": name}, receiver=_json(VolumeInfo.from_json)))


def list_volumes() -> Op[List[VolumeInfo]]:
    return (yield Call("GET", "/v1/volumes", receiver=_json(lambda d: [VolumeInfo.from_json(v) for v in d["volumes"]])))


def delete_volume(name: str) -> Op[None]:
    return (yield Call("DELETE", f"/v1/volumes/{_seg(name)}"))


# Background processes and previews


def _command(command: Union[str, Sequence[str]]) -> Union[str, List[str]]:
    return command if isinstance(command, str) else list(command)


def start_process(
    sandbox_id: str,
    command: Union[str, Sequence[str]],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    tag: Optional[str] = None,
) -> Op[ProcessStarted]:
    """Starts ``command`` (a string through ``sh -c``, a list as argv; ``cwd`` default
    ``/workspace``) and returns its pid at once."""
    body: Dict[str, Any] = {"command": _command(command)}
    if cwd is not None:
        body["cwd"] = cwd
    if env is not None:
        body["env"] = dict(env)
    if tag is not None:
        body["tag"] = tag
    return (
        yield Call("POST", f"{_sandbox(sandbox_id)}/processes", json=body, receiver=_json(ProcessStarted.from_json))
    )


def list_processes(sandbox_id: str) -> Op[List[ProcessInfo]]:
    """Background processes, running and recently ended."""
    return (
        yield Call(
            "GET",
            f"{_sandbox(sandbox_id)}/processes",
            receiver=_json(lambda d: [ProcessInfo.from_json(x) for x in d["processes"]]),
        )
    )


def process_logs(
    sandbox_id: str,
    pid: int,
    *,
    follow: bool = False,
    on_stdout: Optional[Callable[[str], Any]] = None,
    on_stderr: Optional[Callable[[str], Any]] = None,
) -> Op[ProcessLogs]:
    """Its output so far (the last 1 MiB per stream); ``follow=True`` returns when it ends,
    ``on_stdout``/``on_stderr`` receive output as it arrives."""
    path = f"{_sandbox(sandbox_id)}/processes/{int(pid)}/logs"
    params = [("follow", "true" if follow else "false")]
    if on_stdout is None and on_stderr is None:
        return (yield Call("GET", path, params=params, receiver=_json(ProcessLogs.from_json)))
    handler = _stream_handler("result", ProcessLogs.from_json, on_stdout, on_stderr)
    return (yield Call("GET", path, params=params, accept="text/event-stream", receiver=lambda: SSEReceiver(handler)))


def signal_process(sandbox_id: str, pid: int, signal: str = "SIGTERM") -> Op[None]:
    """Signals the process's group."""
    return (yield Call("POST", f"{_sandbox(sandbox_id)}/processes/{int(pid)}/signal", json={"signal": signal}))


def wait_process(sandbox_id: str, pid: int) -> Op[int]:
    """Waits for the process to end; its exit code. Streamed, not one JSON answer: a process may
    stay quiet for longer than the client's read timeout, and the stream's keep-alives carry it."""
    path = f"{_sandbox(sandbox_id)}/processes/{int(pid)}/logs"
    handler = _stream_handler("result", ProcessLogs.from_json, None, None)
    logs = yield Call(
        "GET", path, params=[("follow", "true")], accept="text/event-stream", receiver=lambda: SSEReceiver(handler)
    )
    if logs.exit_code is None:
        raise errors.ServerUnavailableError(f"The server did not say how process {pid} ended")
    return logs.exit_code


def preview_url(sandbox_id: str, port: int, *, expires_in_ms: Optional[int] = None) -> Op[Preview]:
    """A signed, expiring URL (default 1 h) for a server on ``port`` inside the sandbox;
    ``url`` carries the token."""
    body: Dict[str, Any] = {} if expires_in_ms is None else {"expiresInMs": expires_in_ms}
    return (
        yield Call(
            "POST", f"{_sandbox(sandbox_id)}/ports/{int(port)}/preview", json=body, receiver=_json(Preview.from_json)
        )
    )


# Terminals (the WebSocket itself is _websocket.py's)


def pty_path(sandbox_id: str, pty_id: str) -> str:
    return f"{_sandbox(sandbox_id)}/pty/{_seg(pty_id)}"


def create_pty(sandbox_id: str, body: Mapping[str, Any]) -> Op[str]:
    return (
        yield Call("POST", f"{_sandbox(sandbox_id)}/pty", json=dict(body), receiver=_json(lambda d: str(d["ptyId"])))
    )


def kill_pty(sandbox_id: str, pty_id: str) -> Op[None]:
    return (yield Call("DELETE", pty_path(sandbox_id, pty_id)))
