"""The results: dataclasses mirroring @kiln/core's types, in Python's names (snake_case).

Parsed from the server's JSON by ``from_json``; unknown fields from a newer server are ignored.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Union

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


@dataclass(frozen=True)
class SandboxInfo:
    id: str
    state: SandboxState
    labels: Dict[str, str]
    created_at: str
    image: str
    language: Optional[Language] = None
    network: Optional[NetworkPolicy] = None
    #: ``{"cpus", "memory_mb", "pids", "disk_mb"?}`` as the server applied them
    resources: Dict[str, float] = field(default_factory=dict)
    name: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxInfo:
        resources = {_snake(k): v for k, v in dict(data.get("resources") or {}).items()}
        return cls(
            id=data["id"],
            name=data.get("name"),
            state=data["state"],
            labels=dict(data.get("labels") or {}),
            created_at=data["createdAt"],
            image=data["image"],
            language=data.get("language"),
            network=data.get("network"),
            resources=resources,
        )


@dataclass(frozen=True)
class CommandResult:
    """A command's outcome: ``status`` is ``"ok"`` for exit 0, ``"error"`` for another exit code."""

    exit_code: int
    stdout: str
    stderr: str
    status: Status
    truncated: bool
    duration_ms: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommandResult:
        return cls(
            exit_code=data["exitCode"],
            stdout=data["stdout"],
            stderr=data["stderr"],
            status=data["status"],
            truncated=data["truncated"],
            duration_ms=data["durationMs"],
        )

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
class Result:
    """One MIME bundle: a result may carry several representations (a DataFrame has text and html).

    ``png`` and ``jpeg`` are base64 text, as in the HTTP API; ``svg`` is the SVG text.
    """

    is_main_result: bool = False
    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    json: Any = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    svg: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(
            is_main_result=bool(data.get("isMainResult", False)),
            text=data.get("text"),
            html=data.get("html"),
            markdown=data.get("markdown"),
            json=data.get("json"),
            png=data.get("png"),
            jpeg=data.get("jpeg"),
            svg=data.get("svg"),
        )

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


@dataclass(frozen=True)
class Execution:
    """A notebook cell's outcome. Renders in Jupyter (``_repr_mimebundle_``)."""

    results: List[Result]
    stdout: str
    stderr: str
    status: Status
    truncated: bool
    duration_ms: float
    error: Optional[ExecutionError] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Execution:
        err = data.get("error")
        return cls(
            results=[Result.from_json(r) for r in data.get("results") or []],
            stdout=data["stdout"],
            stderr=data["stderr"],
            status=data["status"],
            truncated=data["truncated"],
            duration_ms=data["durationMs"],
            error=ExecutionError(err["name"], err["value"], err["traceback"]) if err else None,
        )

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
class FileEntry:
    name: str
    path: str
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    mode: int
    modified_at: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(
            name=data["name"],
            path=data["path"],
            type=data["type"],
            size=data["size"],
            mode=data["mode"],
            modified_at=data["modifiedAt"],
        )


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created_at: str
    size_bytes: int
    source_sandbox_id: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SnapshotInfo:
        return cls(
            name=data["name"],
            created_at=data["createdAt"],
            size_bytes=data["sizeBytes"],
            source_sandbox_id=data.get("sourceSandboxId"),
        )


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    created_at: str
    labels: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VolumeInfo:
        return cls(name=data["name"], created_at=data["createdAt"], labels=dict(data.get("labels") or {}))


@dataclass(frozen=True)
class ProcessStarted:
    pid: int
    tag: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessStarted:
        return cls(pid=data["pid"], tag=data.get("tag"))


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    command: str
    running: bool
    tag: Optional[str] = None
    exit_code: Optional[int] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessInfo:
        return cls(
            pid=data["pid"],
            command=data["command"],
            running=data["running"],
            tag=data.get("tag"),
            exit_code=data.get("exitCode"),
        )


@dataclass(frozen=True)
class ProcessLogs:
    """A background process's output (the last 1 MiB per stream); ``exit_code`` once it ended
    (with ``follow=True``)."""

    stdout: str
    stderr: str
    exit_code: Optional[int] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessLogs:
        return cls(stdout=data["stdout"], stderr=data["stderr"], exit_code=data.get("exitCode"))


@dataclass(frozen=True)
class Preview:
    """A preview URL for a port in the sandbox; ``url`` carries the token."""

    url: str
    token: str
    expires_at: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Preview:
        return cls(url=data["url"], token=data["token"], expires_at=data["expiresAt"])


@dataclass(frozen=True)
class Health:
    status: str
    engine: str
    version: str


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)
