"""The results: dataclasses mirroring @kiln/core's types, in Python's names (snake_case).

Parsed from the server's JSON by ``from_json`` (one for all: each field from its camelCase key);
unknown fields from a newer server are ignored.
"""

from __future__ import annotations

import html as _html
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Type, TypeVar, Union

__all__ = [
    "CommandResult",
    "Execution",
    "ExecutionError",
    "FileEntry",
    "Health",
    "Preview",
    "ProcessInfo",
    "ProcessLogs",
    "ProcessStarted",
    "Result",
    "SandboxInfo",
    "SnapshotInfo",
    "VolumeInfo",
]

Status = Literal["ok", "error", "timeout", "oom", "killed"]
SandboxState = Literal["running", "paused", "stopped", "error"]
Language = Literal["python", "javascript", "typescript"]
NetworkPolicy = Union[str, Dict[str, List[str]]]

J = TypeVar("J", bound="_FromJson")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _parse(parse: Callable[[Any], Any]) -> Dict[str, Any]:
    """A field's metadata: read through ``parse`` (given the key's value, ``None`` when absent)."""
    return {"parse": parse}


def _labels(value: Any) -> Dict[str, str]:
    return dict(value or {})


def _snake_keys(value: Any) -> Dict[str, Any]:
    return {_snake(k): v for k, v in dict(value or {}).items()}


class _FromJson:
    @classmethod
    def from_json(cls: Type[J], data: Mapping[str, Any]) -> J:
        """From the server's JSON: each field from its camelCase key (``exit_code`` from
        ``exitCode``); an optional field absent or null takes its default."""
        values: Dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = _camel(f.name)
            if "parse" in f.metadata:
                values[f.name] = f.metadata["parse"](data.get(key))
            elif f.default is MISSING and f.default_factory is MISSING:
                values[f.name] = data[key]
            elif data.get(key) is not None:
                values[f.name] = data[key]
        return cls(**values)


@dataclass(frozen=True)
class SandboxInfo(_FromJson):
    id: str
    state: SandboxState
    labels: Dict[str, str] = field(metadata=_parse(_labels))
    created_at: str
    image: str
    language: Optional[Language] = None
    network: Optional[NetworkPolicy] = None
    #: ``{"cpus", "memory_mb", "pids", "disk_mb"?}`` as the server applied them
    resources: Dict[str, float] = field(metadata=_parse(_snake_keys), default_factory=dict)
    name: Optional[str] = None


@dataclass(frozen=True)
class CommandResult(_FromJson):
    """A command's outcome: ``status`` is ``"ok"`` for exit 0, ``"error"`` for another exit code."""

    exit_code: int
    stdout: str
    stderr: str
    status: Status
    truncated: bool
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_MIME = {
    "text": "text/plain",
    "html": "text/html",
    "markdown": "text/markdown",
    "json": "application/json",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Result(_FromJson):
    """One MIME bundle: a result may carry several representations (a DataFrame has text and html).

    ``png`` and ``jpeg`` are base64 text, as in the HTTP API; ``svg`` is the SVG text.
    """

    is_main_result: bool = field(metadata=_parse(bool), default=False)
    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    json: Any = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    svg: Optional[str] = None

    def formats(self) -> List[str]:
        """The representations present, e.g. ``["text", "png"]``."""
        return [name for name in _MIME if getattr(self, name) is not None]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, Any]:
        return {_MIME[name]: getattr(self, name) for name in self.formats()}

    def _html_fragment(self) -> str:
        if self.png is not None:
            return f'<img src="data:image/png;base64,{self.png}"/>'
        if self.jpeg is not None:
            return f'<img src="data:image/jpeg;base64,{self.jpeg}"/>'
        if self.svg is not None:
            return self.svg
        if self.html is not None:
            return self.html
        if self.text is not None:
            return f"<pre>{_html.escape(self.text)}</pre>"
        return ""


@dataclass(frozen=True)
class ExecutionError:
    """The user's code raised: data, not a Python exception."""

    name: str
    value: str
    traceback: str


def _error(value: Any) -> Optional[ExecutionError]:
    return ExecutionError(value["name"], value["value"], value["traceback"]) if value else None


@dataclass(frozen=True)
class Execution(_FromJson):
    """A notebook cell's outcome. Renders in Jupyter (``_repr_mimebundle_``)."""

    results: List[Result] = field(metadata=_parse(lambda v: [Result.from_json(r) for r in v or []]))
    stdout: str
    stderr: str
    status: Status
    truncated: bool
    duration_ms: float
    error: Optional[ExecutionError] = field(metadata=_parse(_error), default=None)

    @property
    def text(self) -> Optional[str]:
        """The text of the final expression's value, if the cell ended with one."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, Any]:
        # One result and nothing else to say: its own bundle, so a chart shows as the image.
        if len(self.results) == 1 and not self.stdout and not self.stderr and self.error is None:
            return self.results[0]._repr_mimebundle_()
        parts: List[str] = []
        plain: List[str] = []
        if self.stdout:
            parts.append(f"<pre>{_html.escape(self.stdout)}</pre>")
            plain.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append(f'<pre style="color:#b00">{_html.escape(self.stderr)}</pre>')
            plain.append(self.stderr.rstrip("\n"))
        for r in self.results:
            parts.append(r._html_fragment())
            if r.text is not None:
                plain.append(r.text)
        if self.error is not None:
            tb = self.error.traceback or f"{self.error.name}: {self.error.value}"
            parts.append(f'<pre style="color:#b00">{_html.escape(tb)}</pre>')
            plain.append(tb)
        if self.status not in ("ok", "error"):
            parts.append(f"<p><b>status: {self.status}</b></p>")
            plain.append(f"status: {self.status}")
        return {"text/plain": "\n".join(plain), "text/html": "\n".join(parts)}


@dataclass(frozen=True)
class FileEntry(_FromJson):
    name: str
    path: str
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    mode: int
    modified_at: str


@dataclass(frozen=True)
class SnapshotInfo(_FromJson):
    name: str
    created_at: str
    size_bytes: int
    source_sandbox_id: Optional[str] = None


@dataclass(frozen=True)
class VolumeInfo(_FromJson):
    name: str
    created_at: str
    labels: Dict[str, str] = field(metadata=_parse(_labels), default_factory=dict)


@dataclass(frozen=True)
class ProcessStarted(_FromJson):
    pid: int
    tag: Optional[str] = None


@dataclass(frozen=True)
class ProcessInfo(_FromJson):
    pid: int
    command: str
    running: bool
    tag: Optional[str] = None
    exit_code: Optional[int] = None


@dataclass(frozen=True)
class ProcessLogs(_FromJson):
    """A background process's output (the last 1 MiB per stream); ``exit_code`` once it ended
    (with ``follow=True``)."""

    stdout: str
    stderr: str
    exit_code: Optional[int] = None


@dataclass(frozen=True)
class Preview(_FromJson):
    """A preview URL for a port in the sandbox; ``url`` carries the token."""

    url: str
    token: str
    expires_at: str


@dataclass(frozen=True)
class Health(_FromJson):
    status: str
    engine: str
    version: str


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)
