"""The synchronous client: :class:`Kiln`, :class:`Sandbox` and their parts.

Each method runs one operation of ``_protocol.py`` on the httpx sync transport; ``AsyncKiln``
(``aio.py``) runs the very same operations on the async one.
"""

from __future__ import annotations

from types import TracebackType
from typing import IO, Any, Callable, List, Mapping, Optional, Sequence, Type, Union

import httpx

from . import _protocol as p
from ._transport import SyncTransport, resolve_settings
from .errors import SandboxNotFoundError
from .pty import SandboxPty
from .types import (
    CommandResult,
    Execution,
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
)

__all__ = ["Kiln", "Sandbox", "SandboxFiles", "SandboxProcesses", "Snapshots", "Volumes"]


class Kiln:
    """A client of a Kiln server.

    ``url`` defaults to ``KILN_URL`` (else ``http://127.0.0.1:7420``), ``api_key`` to
    ``KILN_API_KEY``. ``timeout`` (seconds) bounds each read; ``None`` (the default) waits as
    long as the call runs, since commands carry their own ``timeout_ms``. Thread-safe: one
    ``Kiln`` may serve many threads. ``with Kiln() as kiln:`` closes its connections on exit.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        max_connections: int = 100,
    ) -> None:
        self.url, api_key = resolve_settings(url, api_key)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._t = SyncTransport(self.url, api_key, timeout, limits)
        self.snapshots = Snapshots(self._t)
        self.volumes = Volumes(self._t)

    def create(
        self,
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
    ) -> Sandbox:
        """A new sandbox. ``resources`` takes ``cpus``, ``memory_mb``, ``disk_mb``, ``pids``;
        ``volumes`` entries ``{"volume", "mount_path", "read_only"?}``. ``with kiln.create() as sb:``
        deletes it on exit."""
        options = dict(
            name=name,
            image=image,
            snapshot=snapshot,
            language=language,
            labels=labels,
            env=env,
            resources=resources,
            network=network,
            volumes=volumes,
            auto_stop_ms=auto_stop_ms,
            auto_delete_ms=auto_delete_ms,
        )
        return Sandbox(self._t, self._t.run(p.create(options)))

    def get(self, id_or_name: str) -> Sandbox:
        """The sandbox with this id or name; ``SandboxNotFoundError`` when there is none."""
        return Sandbox(self._t, self._t.run(p.get(id_or_name)))

    def get_or_create(self, name: str, **options: Any) -> Sandbox:
        """The sandbox named ``name``, created with ``options`` (as :meth:`create`) if absent."""
        return Sandbox(self._t, self._t.run(p.get_or_create(name, options)))

    def list(self, labels: Optional[Mapping[str, str]] = None) -> List[SandboxInfo]:
        """Sandboxes, those carrying every label in ``labels`` when given."""
        return self._t.run(p.list_sandboxes(labels))

    def health(self) -> Health:
        return self._t.run(p.health())

    def close(self) -> None:
        """Closes the connections; sandboxes keep running."""
        self._t.close()

    def __enter__(self) -> Kiln:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sandbox:
    """One sandbox. ``with sandbox:`` (or ``with kiln.create() as sandbox:``) deletes it on exit."""

    def __init__(self, transport: SyncTransport, info: SandboxInfo) -> None:
        self._t = transport
        self.id = info.id
        self.name = info.name
        #: the info as of the last answer that carried it (create, get, start, stop)
        self.last_info = info
        self.files = SandboxFiles(transport, info.id)
        self.processes = SandboxProcesses(transport, info.id)
        #: terminals: ``pty.create(cols=, rows=, on_data=)``, ``pty.connect(id)``
        self.pty = SandboxPty(transport, info.id)

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, name={self.name!r})"

    def info(self) -> SandboxInfo:
        """The sandbox's current info, fetched."""
        self.last_info = self._t.run(p.get(self.id))
        return self.last_info

    def exec(
        self,
        command: Union[str, Sequence[str]],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        stdin: Union[str, bytes, None] = None,
        timeout_ms: Optional[int] = None,
        max_output_bytes: Optional[int] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
    ) -> CommandResult:
        """Runs a command: a string through ``sh -c``, a list as argv. A non-zero exit is data
        (``status="error"``), not an exception. ``on_stdout``/``on_stderr`` receive output as it
        arrives (the call then streams over SSE)."""
        return self._t.run(
            p.exec_(
                self.id,
                command,
                cwd=cwd,
                env=env,
                stdin=stdin,
                timeout_ms=timeout_ms,
                max_output_bytes=max_output_bytes,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
            )
        )

    def run_code(
        self,
        code: str,
        *,
        language: Optional[Language] = None,
        context: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
        on_result: Optional[Callable[[Result], Any]] = None,
    ) -> Execution:
        """Runs a notebook cell: state persists per ``(language, context)``; the value of a final
        expression is a result. The user's error is ``Execution.error``, not an exception."""
        return self._t.run(
            p.run_code(
                self.id,
                code,
                language=language,
                context=context,
                timeout_ms=timeout_ms,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
                on_result=on_result,
            )
        )

    def preview_url(self, port: int, *, expires_in_ms: Optional[int] = None) -> Preview:
        """A signed, expiring URL (default 1 h) for a server on ``port`` inside the sandbox;
        ``url`` carries the token."""
        return self._t.run(p.preview_url(self.id, port, expires_in_ms))

    def snapshot(self, name: str) -> SnapshotInfo:
        return self._t.run(p.snapshot(self.id, name))

    def start(self) -> None:
        self.last_info = self._t.run(p.lifecycle(self.id, "start"))

    def stop(self) -> None:
        self.last_info = self._t.run(p.lifecycle(self.id, "stop"))

    def delete(self) -> None:
        self._t.run(p.delete(self.id))

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        try:
            self.delete()
        except SandboxNotFoundError:
            pass  # already deleted inside the block


class SandboxFiles:
    """A sandbox's files. Relative paths resolve against ``/workspace``."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    def read(self, path: str) -> bytes:
        """The file's bytes; ``kiln.FileNotFoundError`` when absent."""
        return self._t.run(p.read(self._id, path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read(path).decode(encoding)

    def write(self, path: str, content: Union[str, bytes, IO[bytes]]) -> FileEntry:
        """Writes a file (parents created): str (UTF-8), bytes, or a binary file object (streamed)."""
        return self._t.run(p.write(self._id, path, content))

    def list(self, path: str = ".") -> List[FileEntry]:
        return self._t.run(p.list_files(self._id, path))

    def stat(self, path: str) -> FileEntry:
        return self._t.run(p.stat(self._id, path))

    def exists(self, path: str) -> bool:
        return self._t.run(p.exists(self._id, path))

    def mkdir(self, path: str) -> FileEntry:
        """Creates a directory and its parents (an existing one is fine)."""
        return self._t.run(p.mkdir(self._id, path))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self._t.run(p.remove(self._id, path, recursive))

    def upload(self, local_path: str, remote_path: str) -> None:
        """A local file or directory into the sandbox, streamed (never held whole in memory)."""
        self._t.run(p.upload(self._id, local_path, remote_path))

    def download(self, remote_path: str, local_path: str) -> None:
        """A file or directory out of the sandbox, streamed to disk; symlinks are not followed."""
        self._t.run(p.download(self._id, remote_path, local_path))


class SandboxProcesses:
    """Background processes: they outlive the call that started them (stopped with the sandbox)."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    def start(
        self,
        command: Union[str, Sequence[str]],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        tag: Optional[str] = None,
    ) -> ProcessStarted:
        """Starts ``command`` (a string through ``sh -c``, a list as argv; ``cwd`` default
        ``/workspace``) and returns its pid at once."""
        return self._t.run(p.start_process(self._id, command, cwd=cwd, env=env, tag=tag))

    def list(self) -> List[ProcessInfo]:
        """Background processes, running and recently ended."""
        return self._t.run(p.list_processes(self._id))

    def logs(
        self,
        pid: int,
        *,
        follow: bool = False,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
    ) -> ProcessLogs:
        """Its output so far (the last 1 MiB per stream); ``follow=True`` returns when it ends,
        ``on_stdout``/``on_stderr`` receive output as it arrives."""
        return self._t.run(p.process_logs(self._id, pid, follow=follow, on_stdout=on_stdout, on_stderr=on_stderr))

    def signal(self, pid: int, signal: str = "SIGTERM") -> None:
        """Signals the process's group."""
        self._t.run(p.signal_process(self._id, pid, signal))

    def wait(self, pid: int) -> int:
        """Waits for the process to end; its exit code."""
        return self._t.run(p.wait_process(self._id, pid))


class Snapshots:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(self) -> List[SnapshotInfo]:
        return self._t.run(p.list_snapshots())

    def delete(self, name: str) -> None:
        self._t.run(p.delete_snapshot(name))


class Volumes:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, name: str) -> VolumeInfo:
        return self._t.run(p.create_volume(name))

    def list(self) -> List[VolumeInfo]:
        return self._t.run(p.list_volumes())

    def delete(self, name: str) -> None:
        self._t.run(p.delete_volume(name))
