"""The asyncio client: :class:`AsyncKiln`, :class:`AsyncSandbox` and their parts.

The same methods as the synchronous client (``_shell.py``), awaited: they run on httpx's async
transport, so calls made at once run at once (50 concurrent calls take about as long as one).
"""

from __future__ import annotations

from typing import Any, Awaitable, Coroutine, Generator, Optional

from ._shell import AsyncPart, FilesOps, KilnOps, ProcessesOps, SandboxOps, SnapshotsOps, VolumesOps
from ._transport import AsyncTransport
from .errors import SandboxNotFoundError
from .pty import AsyncSandboxPty
from .types import SandboxInfo

__all__ = [
    "AsyncKiln",
    "AsyncSandbox",
    "AsyncSandboxFiles",
    "AsyncSandboxProcesses",
    "AsyncSnapshots",
    "AsyncVolumes",
    "PendingSandbox",
]


class AsyncSandboxFiles(AsyncPart, FilesOps):
    """A sandbox's files (awaited). Relative paths resolve against ``/workspace``."""


class AsyncSandboxProcesses(AsyncPart, ProcessesOps):
    """Background processes (awaited): they outlive the call that started them."""


class AsyncSnapshots(AsyncPart, SnapshotsOps):
    pass


class AsyncVolumes(AsyncPart, VolumesOps):
    pass


class AsyncSandbox(AsyncPart, SandboxOps):
    """One sandbox; ``async with sandbox:`` deletes it on exit."""

    _parts = (AsyncSandboxFiles, AsyncSandboxProcesses, AsyncSandboxPty)
    files: AsyncSandboxFiles
    processes: AsyncSandboxProcesses
    pty: AsyncSandboxPty

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.delete()
        except SandboxNotFoundError:
            pass  # already deleted inside the block


class PendingSandbox(Coroutine[Any, Any, AsyncSandbox]):
    """What ``create``, ``get`` and ``get_or_create`` return: a coroutine of the sandbox
    (``await`` it, or ``asyncio.create_task`` it), and an async context manager that deletes
    the sandbox on exit (``async with kiln.create() as sandbox:``)."""

    def __init__(self, transport: AsyncTransport, answer: Awaitable[SandboxInfo]) -> None:
        self._coro = self._open(transport, answer)
        self._sandbox: Optional[AsyncSandbox] = None

    @staticmethod
    async def _open(transport: AsyncTransport, answer: Awaitable[SandboxInfo]) -> AsyncSandbox:
        return AsyncSandbox(transport, await answer)

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, AsyncSandbox]:
        return self._coro.__await__()

    async def __aenter__(self) -> AsyncSandbox:
        self._sandbox = await self._coro
        return self._sandbox

    async def __aexit__(self, *exc: object) -> None:
        if self._sandbox is not None:
            await self._sandbox.__aexit__(None, None, None)


class AsyncKiln(AsyncPart, KilnOps):
    """The asyncio twin of :class:`kiln.Kiln` (same arguments, same methods, awaited).

    ``async with AsyncKiln() as kiln:`` closes its connections on exit.
    """

    _transport = AsyncTransport
    _parts = (AsyncSnapshots, AsyncVolumes)
    snapshots: AsyncSnapshots
    volumes: AsyncVolumes

    def _sandbox(self, answer: Awaitable[SandboxInfo]) -> PendingSandbox:
        return PendingSandbox(self._t, answer)

    async def close(self) -> None:
        await self._t.aclose()

    async def __aenter__(self) -> AsyncKiln:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
