"""The synchronous client: :class:`Kiln`, :class:`Sandbox` and their parts.

The methods are ``_shell.py``'s (the operations of ``_protocol.py``), run on the httpx sync
transport; ``AsyncKiln`` (``aio.py``) runs the very same ones on the async transport.
"""

from __future__ import annotations

from types import TracebackType
from typing import Optional, Type

from ._shell import FilesOps, KilnOps, ProcessesOps, SandboxOps, SnapshotsOps, SyncPart, VolumesOps
from ._transport import SyncTransport
from .errors import SandboxNotFoundError
from .pty import SandboxPty
from .types import SandboxInfo

__all__ = ["Kiln", "Sandbox", "SandboxFiles", "SandboxProcesses", "Snapshots", "Volumes"]


class SandboxFiles(SyncPart, FilesOps):
    """A sandbox's files. Relative paths resolve against ``/workspace``."""


class SandboxProcesses(SyncPart, ProcessesOps):
    """Background processes: they outlive the call that started them (stopped with the sandbox)."""


class Snapshots(SyncPart, SnapshotsOps):
    pass


class Volumes(SyncPart, VolumesOps):
    pass


class Sandbox(SyncPart, SandboxOps):
    """One sandbox. ``with sandbox:`` (or ``with kiln.create() as sandbox:``) deletes it on exit."""

    _parts = (SandboxFiles, SandboxProcesses, SandboxPty)
    files: SandboxFiles
    processes: SandboxProcesses
    pty: SandboxPty

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        try:
            self.delete()
        except SandboxNotFoundError:
            pass  # already deleted inside the block


class Kiln(SyncPart, KilnOps):
    """A client of a Kiln server: ``Kiln(url=None, api_key=None, *, timeout=None, max_connections=100)``.

    ``url`` defaults to ``KILN_URL`` (else ``http://127.0.0.1:7420``), ``api_key`` to
    ``KILN_API_KEY``. ``timeout`` (seconds) bounds each read; ``None`` (the default) waits as
    long as the call runs, since commands carry their own ``timeout_ms``. Thread-safe: one
    ``Kiln`` may serve many threads. ``with Kiln() as kiln:`` closes its connections on exit.
    """

    _transport = SyncTransport
    _parts = (Snapshots, Volumes)
    snapshots: Snapshots
    volumes: Volumes

    def _sandbox(self, answer: SandboxInfo) -> Sandbox:
        return Sandbox(self._t, answer)

    def close(self) -> None:
        """Closes the connections; sandboxes keep running."""
        self._t.close()

    def __enter__(self) -> Kiln:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
