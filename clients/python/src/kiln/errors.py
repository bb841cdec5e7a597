"""Errors: one root, :class:`KilnError`, with the server's stable ``code``.

Every failure of a call is a ``KilnError`` (never a bare ``httpx`` error): the server's error
body ``{"error": {"code", "message", "field"?}}`` becomes the class registered for its code, the
HTTP status and the field ride along. Failures of the user's code are not errors: they come back
as :class:`~kiln.CommandResult` / :class:`~kiln.Execution` data.
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type

__all__ = [
    "AbortedError",
    "AgentUnavailableError",
    "ConflictError",
    "EngineError",
    "EngineUnavailableError",
    "FileError",
    "FileNotFoundError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidArgumentError",
    "KilnError",
    "NotFoundError",
    "NotSupportedError",
    "PayloadTooLargeError",
    "QuotaExceededError",
    "RateLimitedError",
    "SandboxNotFoundError",
    "SandboxNotRunningError",
    "ServerUnavailableError",
    "SnapshotNotFoundError",
    "UnauthorizedError",
    "VolumeNotFoundError",
    "error_class_for",
]


class KilnError(Exception):
    """Root of every error the SDK raises.

    ``code`` is the server's stable code (``"SANDBOX_NOT_FOUND"``, ``"UNAUTHORIZED"``, ...),
    ``status`` the HTTP status it came with (``None`` when no answer arrived), ``field`` the
    request field a ``400`` names, ``retry_after`` the seconds of a ``Retry-After`` header.
    """

    code: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        field: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.field = field
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class InvalidArgumentError(KilnError):
    """``400 INVALID_ARGUMENT``: ``field`` names the offending request field."""

    code = "INVALID_ARGUMENT"


class NotSupportedError(KilnError):
    code = "NOT_SUPPORTED"


class FileError(KilnError):
    """``400 FILE_ERROR``: permission denied, is a directory, too large."""

    code = "FILE_ERROR"


class UnauthorizedError(KilnError):
    """``401``: a missing, unknown, revoked or expired key."""

    code = "UNAUTHORIZED"


class ForbiddenError(KilnError):
    """``403``: the key lacks the route's scope (or an admission hook said no)."""

    code = "FORBIDDEN"


class NotFoundError(KilnError):
    """``404``: the root of every not-found error (and an unknown route)."""

    code = "NOT_FOUND"


class SandboxNotFoundError(NotFoundError):
    code = "SANDBOX_NOT_FOUND"


class FileNotFoundError(NotFoundError, builtins.FileNotFoundError):  # noqa: A001 - core's name
    """A path absent in the sandbox. Also a builtin ``FileNotFoundError``, so either catches it."""

    code = "FILE_NOT_FOUND"


class SnapshotNotFoundError(NotFoundError):
    code = "SNAPSHOT_NOT_FOUND"


class VolumeNotFoundError(NotFoundError):
    code = "VOLUME_NOT_FOUND"


class ConflictError(KilnError):
    """``409``: the name is taken, or the state does not allow the call."""

    code = "CONFLICT"


class SandboxNotRunningError(ConflictError):
    code = "SANDBOX_NOT_RUNNING"


class PayloadTooLargeError(KilnError):
    """``413``: an upload over the server's limit (``KILN_MAX_UPLOAD_MB``)."""

    code = "PAYLOAD_TOO_LARGE"


class QuotaExceededError(KilnError):
    """``429 QUOTA_EXCEEDED``: an organisation's quota (no ``Retry-After``)."""

    code = "QUOTA_EXCEEDED"


class RateLimitedError(KilnError):
    """``429 RATE_LIMITED``: ``retry_after`` holds the seconds to wait (``Retry-After``)."""

    code = "RATE_LIMITED"


class EngineError(KilnError):
    code = "ENGINE_ERROR"


class EngineUnavailableError(KilnError):
    code = "ENGINE_UNAVAILABLE"


class AgentUnavailableError(KilnError):
    code = "AGENT_UNAVAILABLE"


class InternalServerError(KilnError):
    """``500 INTERNAL``: the server's log has the details."""

    code = "INTERNAL"


class AbortedError(KilnError):
    """The call's ``CancelToken`` was cancelled before the call began (nothing was sent)."""

    code = "ABORTED"


class ServerUnavailableError(KilnError):
    """No Kiln server answered at the URL (refused, unknown host, connection cut)."""

    code = "SERVER_UNAVAILABLE"


_BY_CODE: Dict[str, Type[KilnError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotSupportedError,
        FileError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        SandboxNotFoundError,
        FileNotFoundError,
        SnapshotNotFoundError,
        VolumeNotFoundError,
        ConflictError,
        SandboxNotRunningError,
        PayloadTooLargeError,
        QuotaExceededError,
        RateLimitedError,
        EngineError,
        EngineUnavailableError,
        AgentUnavailableError,
        InternalServerError,
        ServerUnavailableError,
        AbortedError,
    )
}

_CODE_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    502: "ENGINE_ERROR",
    503: "ENGINE_UNAVAILABLE",
}


def error_class_for(code: str) -> Type[KilnError]:
    """The class for a server code; a code this SDK does not know yet is a plain ``KilnError``."""
    return _BY_CODE.get(code, KilnError)


def code_for_status(status: int) -> str:
    """The code an answer without a readable error body stands for."""
    return _CODE_BY_STATUS.get(status, "INTERNAL")
