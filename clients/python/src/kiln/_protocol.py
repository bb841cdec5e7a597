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
from dataclasses import dataclass, field
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Generator,
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
    FileEntry,
    Health,
    Preview,
    ProcessInfo,
    ProcessLogs,
    ProcessStarted,
    Result,
    SandboxInfo,
    SnapshotInfo,
    VolumeInfo,
)

T = TypeVar("T")
Op = Generator["Call", Any, T]

CHUNK_BYTES = 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024


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
    #: a raw request body: bytes, or a :class:`StreamSource` sent as it is read
    body: Union[bytes, StreamSource, None] = None
    accept: Optional[str] = None
    #: makes the receiver of a successful answer
    receiver: Callable[[], Receiver] = field(default=lambda: BufferReceiver(_parse_none))

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

    def content(self) -> Union[bytes, StreamSource, None]:
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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


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
    return (yield Call("GET", "/healthz", receiver=_json(lambda d: Health(d["status"], d["engine"], d["version"]))))


def create(options: Mapping[str, Any]) -> Op[SandboxInfo]:
    return (yield Call("POST", "/v1/sandboxes", json=create_body(options), receiver=_json(SandboxInfo.from_json)))


def get(id_or_name: str) -> Op[SandboxInfo]:
    return (yield Call("GET", _sandbox(id_or_name), receiver=_json(SandboxInfo.from_json)))


def list_sandboxes(labels: Optional[Mapping[str, str]] = None) -> Op[List[SandboxInfo]]:
    params = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
    return (
        yield Call(
            "GET",
            "/v1/sandboxes",
            params=params,
            receiver=_json(lambda d: [SandboxInfo.from_json(s) for s in d["sandboxes"]]),
        )
    )


def get_or_create(name: str, options: Mapping[str, Any]) -> Op[SandboxInfo]:
    """The sandbox named ``name``, made with ``options`` when there is none (race-safe)."""
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
) -> Callable[[Dict[str, Any]], Any]:
    def on_event(event: Dict[str, Any]) -> Any:
        kind = event.get("type")
        if kind == "stdout":
            if on_stdout:
                on_stdout(event["data"])
        elif kind == "stderr":
            if on_stderr:
                on_stderr(event["data"])
        elif kind == "display":
            if on_result:
                on_result(Result.from_json(event["result"]))
        elif kind == final_type:
            return parse_final(event[final_type])
        return None

    return on_event


def exec_(
    sandbox_id: str,
    command: Union[str, Sequence[str]],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdin: Union[str, bytes, None] = None,
    timeout_ms: Optional[int] = None,
    max_output_bytes: Optional[int] = None,
    on_stdout: Optional[Callable[[str], Any]] = None,
    on_stderr: Optional[Callable[[str], Any]] = None,
) -> Op[CommandResult]:
    body: Dict[str, Any] = {"command": command if isinstance(command, str) else list(command)}
    if cwd is not None:
        body["cwd"] = cwd
    if env is not None:
        body["env"] = dict(env)
    if stdin is not None:
        body["stdin"] = stdin.decode("utf-8") if isinstance(stdin, bytes) else stdin
    if timeout_ms is not None:
        body["timeoutMs"] = timeout_ms
    if max_output_bytes is not None:
        body["maxOutputBytes"] = max_output_bytes
    path = f"{_sandbox(sandbox_id)}/exec"
    if on_stdout is None and on_stderr is None:
        return (yield Call("POST", path, json=body, receiver=_json(CommandResult.from_json)))
    handler = _stream_handler("result", CommandResult.from_json, on_stdout, on_stderr)
    return (yield Call("POST", path, json=body, accept="text/event-stream", receiver=lambda: SSEReceiver(handler)))


def run_code(
    sandbox_id: str,
    code: str,
    *,
    language: Optional[str] = None,
    context: Optional[str] = None,
    timeout_ms: Optional[int] = None,
    on_stdout: Optional[Callable[[str], Any]] = None,
    on_stderr: Optional[Callable[[str], Any]] = None,
    on_result: Optional[Callable[[Result], Any]] = None,
) -> Op[Execution]:
    body: Dict[str, Any] = {"code": code}
    if language is not None:
        body["language"] = language
    if context is not None:
        body["context"] = context
    if timeout_ms is not None:
        body["timeoutMs"] = timeout_ms
    path = f"{_sandbox(sandbox_id)}/code"
    if on_stdout is None and on_stderr is None and on_result is None:
        return (yield Call("POST", path, json=body, receiver=_json(Execution.from_json)))
    handler = _stream_handler("execution", Execution.from_json, on_stdout, on_stderr, on_result)
    return (yield Call("POST", path, json=body, accept="text/event-stream", receiver=lambda: SSEReceiver(handler)))


# Files


def _files(sandbox_id: str, suffix: str = "") -> str:
    return f"{_sandbox(sandbox_id)}/files{suffix}"


def read(sandbox_id: str, path: str) -> Op[bytes]:
    return (yield Call("GET", _files(sandbox_id), params=[("path", path)], receiver=lambda: BufferReceiver(bytes)))


def _put(sandbox_id: str, path: str, body: Union[bytes, StreamSource]) -> Call:
    return Call("PUT", _files(sandbox_id), params=[("path", path)], body=body, receiver=_json(FileEntry.from_json))


def write(sandbox_id: str, path: str, content: Union[str, bytes, IO[bytes]]) -> Op[FileEntry]:
    if isinstance(content, str):
        body: Union[bytes, StreamSource] = content.encode("utf-8")
    elif isinstance(content, (bytes, bytearray, memoryview)):
        body = bytes(content)
    else:
        body = StreamSource(file=content)
    return (yield _put(sandbox_id, path, body))


def list_files(sandbox_id: str, path: str) -> Op[List[FileEntry]]:
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
    return (yield Call("POST", _files(sandbox_id, "/mkdir"), json={"path": path}, receiver=_json(FileEntry.from_json)))


def remove(sandbox_id: str, path: str, recursive: bool = False) -> Op[None]:
    params = [("path", path)] + ([("recursive", "true")] if recursive else [])
    return (yield Call("DELETE", _files(sandbox_id), params=params))


def _join(remote: str, name: str) -> str:
    return remote.rstrip("/") + "/" + name


def upload(sandbox_id: str, local: str, remote: str) -> Op[None]:
    """A local file or directory into the sandbox, each file streamed (never read whole)."""
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


def download(sandbox_id: str, remote: str, local: str) -> Op[None]:
    """A file or directory out of the sandbox, streamed to disk; symlinks are not followed."""
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
    path = f"{_sandbox(sandbox_id)}/processes/{int(pid)}/logs"
    params = [("follow", "true" if follow else "false")]
    if on_stdout is None and on_stderr is None:
        return (yield Call("GET", path, params=params, receiver=_json(ProcessLogs.from_json)))
    handler = _stream_handler("result", ProcessLogs.from_json, on_stdout, on_stderr)
    return (yield Call("GET", path, params=params, accept="text/event-stream", receiver=lambda: SSEReceiver(handler)))


def signal_process(sandbox_id: str, pid: int, signal: str = "SIGTERM") -> Op[None]:
    return (yield Call("POST", f"{_sandbox(sandbox_id)}/processes/{int(pid)}/signal", json={"signal": signal}))


def wait_process(sandbox_id: str, pid: int) -> Op[int]:
    logs = yield from process_logs(sandbox_id, pid, follow=True)
    if logs.exit_code is None:
        raise errors.ServerUnavailableError(f"The server did not say how process {pid} ended")
    return logs.exit_code


def preview_url(sandbox_id: str, port: int, expires_in_ms: Optional[int] = None) -> Op[Preview]:
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
