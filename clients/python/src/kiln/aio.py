"""The asyncio client: :class:`AsyncKiln`, :class:`AsyncSandbox` and their parts.

The same operations as the synchronous client (``_protocol.py``), run on httpx's async
transport: calls made at once run at once (50 concurrent calls take about as long as one).
"""

from __future__ import annotations

from types import TracebackType
from typing import IO, Any, Awaitable, Callable, Generator, List, Mapping, Optional, Sequence, Type, Union

import httpx

from . import _protocol as p
from ._transport import AsyncTransport, resolve_settings
from .errors import SandboxNotFoundError
from .pty import AsyncSandboxPty
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

__all__ = ["AsyncKiln", "AsyncSandbox", "AsyncSandboxFiles", "AsyncSandboxProcesses", "AsyncSnapshots", "AsyncVolumes"]


class AsyncKiln:
    """The asyncio twin of :class:`kiln.Kiln` (same arguments, same methods, awaited).

    ``async with AsyncKiln() as kiln:`` closes its connections on exit.
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
        self._t = AsyncTransport(self.url, api_key, timeout, limits)
        self.snapshots = AsyncSnapshots(self._t)
        self.volumes = AsyncVolumes(self._t)

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
    ) -> _Creating:
        """A new sandbox: ``sb = await kiln.create()``, or ``async with kiln.create() as sb:``
        (deleted on exit)."""
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
        return _Creating(self._sandbox(p.create(options)))

    async def get(self, id_or_name: str) -> AsyncSandbox:
        return await self._sandbox(p.get(id_or_name))

    async def get_or_create(self, name: str, **options: Any) -> AsyncSandbox:
        return await self._sandbox(p.get_or_create(name, options))

    async def list(self, labels: Optional[Mapping[str, str]] = None) -> List[SandboxInfo]:
        return await self._t.run(p.list_sandboxes(labels))

    async def health(self) -> Health:
        return await self._t.run(p.health())

    async def _sandbox(self, op: p.Op[SandboxInfo]) -> AsyncSandbox:
        return AsyncSandbox(self._t, await self._t.run(op))

    async def close(self) -> None:
        await self._t.aclose()

    async def __aenter__(self) -> AsyncKiln:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Creating:
    """``await``-able (the sandbox) and an async context manager (deletes it on exit)."""

    def __init__(self, pending: Awaitable[AsyncSandbox]) -> None:
        self._pending = pending
        self._sandbox: Optional[AsyncSandbox] = None

    def __await__(self) -> Generator[Any, None, AsyncSandbox]:
        return self._pending.__await__()

    async def __aenter__(self) -> AsyncSandbox:
        self._sandbox = await self._pending
        return self._sandbox

    async def __aexit__(self, *exc: object) -> None:
        if self._sandbox is not None:
            await self._sandbox.__aexit__(None, None, None)


class AsyncSandbox:
    """One sandbox; ``async with sandbox:`` deletes it on exit."""

    def __init__(self, transport: AsyncTransport, info: SandboxInfo) -> None:
        self._t = transport
        self.id = info.id
        self.name = info.name
        self.last_info = info
        self.files = AsyncSandboxFiles(transport, info.id)
        self.processes = AsyncSandboxProcesses(transport, info.id)
        #: terminals: ``pty.create(cols=, rows=, on_data=)``, ``pty.connect(id)``
        self.pty = AsyncSandboxPty(transport, info.id)

    def __repr__(self) -> str:
        return f"AsyncSandbox(id={self.id!r}, name={self.name!r})"

    async def info(self) -> SandboxInfo:
        self.last_info = await self._t.run(p.get(self.id))
        return self.last_info

    async def exec(
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
        return await self._t.run(
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

    async def run_code(
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
        return await self._t.run(
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

    async def preview_url(self, port: int, *, expires_in_ms: Optional[int] = None) -> Preview:
        """A signed, expiring URL (default 1 h) for a server on ``port`` inside the sandbox;
        ``url`` carries the token."""
        return await self._t.run(p.preview_url(self.id, port, expires_in_ms))

    async def snapshot(self, name: str) -> SnapshotInfo:
        return await self._t.run(p.snapshot(self.id, name))

    async def start(self) -> None:
        self.last_info = await self._t.run(p.lifecycle(self.id, "start"))

    async def stop(self) -> None:
        self.last_info = await self._t.run(p.lifecycle(self.id, "stop"))

    async def delete(self) -> None:
        await self._t.run(p.delete(self.id))

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        try:
            await self.delete()
        except SandboxNotFoundError:
            pass  # already deleted inside the block


class AsyncSandboxFiles:
    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    async def read(self, path: str) -> bytes:
        return await self._t.run(p.read(self._id, path))

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def write(self, path: str, content: Union[str, bytes, IO[bytes]]) -> FileEntry:
        return await self._t.run(p.write(self._id, path, content))

    async def list(self, path: str = ".") -> List[FileEntry]:
        return await self._t.run(p.list_files(self._id, path))

    async def stat(self, path: str) -> FileEntry:
        return await self._t.run(p.stat(self._id, path))

    async def exists(self, path: str) -> bool:
        return await self._t.run(p.exists(self._id, path))

    async def mkdir(self, path: str) -> FileEntry:
        return await self._t.run(p.mkdir(self._id, path))

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        await self._t.run(p.remove(self._id, path, recursive))

    async def upload(self, local_path: str, remote_path: str) -> None:
        await self._t.run(p.upload(self._id, local_path, remote_path))

    async def download(self, remote_path: str, local_path: str) -> None:
        await self._t.run(p.download(self._id, remote_path, local_path))


class AsyncSandboxProcesses:
    """Background processes: they outlive the call that started them (stopped with the sandbox)."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._t = transport
        self._id = sandbox_id

    async def start(
        self,
        command: Union[str, Sequence[str]],
        *,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        tag: Optional[str] = None,
    ) -> ProcessStarted:
        """Starts ``command`` (a string through ``sh -c``, a list as argv; ``cwd`` default
        ``/workspace``) and returns its pid at once."""
        return await self._t.run(p.start_process(self._id, command, cwd=cwd, env=env, tag=tag))

    async def list(self) -> List[ProcessInfo]:
        """Background processes, running and recently ended."""
        return await self._t.run(p.list_processes(self._id))

    async def logs(
        self,
        pid: int,
        *,
        follow: bool = False,
        on_stdout: Optional[Callable[[str], Any]] = None,
        on_stderr: Optional[Callable[[str], Any]] = None,
    ) -> ProcessLogs:
        """Its output so far (the last 1 MiB per stream); ``follow=True`` returns when it ends,
        ``on_stdout``/``on_stderr`` receive output as it arrives."""
        return await self._t.run(p.process_logs(self._id, pid, follow=follow, on_stdout=on_stdout, on_stderr=on_stderr))

    async def signal(self, pid: int, signal: str = "SIGTERM") -> None:
        """Signals the process's group."""
        await self._t.run(p.signal_process(self._id, pid, signal))

    async def wait(self, pid: int) -> int:
        """Waits for the process to end; its exit code."""
        return await self._t.run(p.wait_process(self._id, pid))


class AsyncSnapshots:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def list(self) -> List[SnapshotInfo]:
        return await self._t.run(p.list_snapshots())

    async def delete(self, name: str) -> None:
        await self._t.run(p.delete_snapshot(name))


class AsyncVolumes:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(self, name: str) -> VolumeInfo:
        return await self._t.run(p.create_volume(name))

    async def list(self) -> List[VolumeInfo]:
        return await self._t.run(p.list_volumes())

    async def delete(self, name: str) -> None:
        await self._t.run(p.delete_volume(name))
