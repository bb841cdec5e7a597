"""Kiln's Python SDK: a client of a Kiln server (``kiln serve``).

>>> from kiln import Kiln
>>> with Kiln(url="http://127.0.0.1:7420", api_key="kiln_...") as kiln:
...     with kiln.create(language="python") as sandbox:
...         print(sandbox.run_code("6 * 7").text)
42
"""

from ._protocol import CancelToken
from .aio import AsyncKiln, AsyncSandbox, AsyncSandboxFiles
from .client import Kiln, Sandbox, SandboxFiles
from .errors import (
    AbortedError,
    AgentUnavailableError,
    ConflictError,
    EngineError,
    EngineUnavailableError,
    FileError,
    FileNotFoundError,
    ForbiddenError,
    InternalServerError,
    InvalidArgumentError,
    KilnError,
    NotFoundError,
    NotSupportedError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitedError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    ServerUnavailableError,
    SnapshotNotFoundError,
    UnauthorizedError,
    VolumeNotFoundError,
)
from .pty import AsyncPty, Pty
from .types import (
    CommandResult,
    Execution,
    ExecutionError,
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

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "AgentUnavailableError",
    "AsyncKiln",
    "AsyncPty",
    "AsyncSandbox",
    "AsyncSandboxFiles",
    "CancelToken",
    "CommandResult",
    "ConflictError",
    "EngineError",
    "EngineUnavailableError",
    "Execution",
    "ExecutionError",
    "FileEntry",
    "FileError",
    "FileNotFoundError",
    "ForbiddenError",
    "Health",
    "InternalServerError",
    "InvalidArgumentError",
    "Kiln",
    "KilnError",
    "NotFoundError",
    "NotSupportedError",
    "PayloadTooLargeError",
    "Preview",
    "ProcessInfo",
    "ProcessLogs",
    "ProcessStarted",
    "Pty",
    "QuotaExceededError",
    "RateLimitedError",
    "Result",
    "Sandbox",
    "SandboxFiles",
    "SandboxInfo",
    "SandboxNotFoundError",
    "SandboxNotRunningError",
    "ServerUnavailableError",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "UnauthorizedError",
    "VolumeInfo",
    "VolumeNotFoundError",
    "__version__",
]
