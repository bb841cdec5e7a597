"""The clients' classes, once for both: ``Kiln`` (``client.py``) and ``AsyncKiln`` (``aio.py``).

Every method of a client's class is a protocol operation (``_protocol.py``) run on the instance's
transport: :class:`Operation` is a descriptor that turns an operation into a method. Read from a
:class:`SyncPart` the method returns the result; read from an :class:`AsyncPart` it returns an
awaitable of it. So the mixins below (``KilnOps``, ``SandboxOps``, ...) hold each method's
signature, documentation and logic once, and the two modules only name the classes (plus
``with`` on one side and ``async with`` on the other).
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, List, Optional, Tuple, TypeVar, overload

import httpx

from . import _protocol as p
from ._protocol import Op
from ._transport import AsyncTransport, SyncTransport, resolve_settings
from .types import SandboxInfo

if sys.version_info >= (3, 10):
    from typing import Concatenate, ParamSpec
else:  # Python 3.9: only annotations (never evaluated here) name Concatenate
    from typing import TypeVar as ParamSpec

if TYPE_CHECKING:
    from .aio import PendingSandbox
    from .client import Sandbox

P = ParamSpec("P")
T = TypeVar("T")


class SyncPart:
    """A part of ``Kiln``: its operations return their results."""

    _t: SyncTransport


class AsyncPart:
    """A part of ``AsyncKiln``: its operations return awaitables of their results."""

    _t: AsyncTransport


class _Bound(Generic[P, T]):
    """An operation made from ``make`` (a generator function of ``_protocol.py``); ``first``
    picks its first argument from the instance (the instance, its sandbox id), if it takes one."""

    def __init__(self, make: Callable[..., Op[T]], first: Optional[Callable[[Any], Any]]) -> None:
        self._make = make
        self._first = first
        self.__doc__ = make.__doc__
        self._name = make.__name__
        self._signature: Optional[inspect.Signature] = None

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def _method(self, obj: Any, finish: Callable[[Any], Any]) -> Callable[..., Any]:
        make, first = self._make, self._first

        def start(args: Any, kwargs: Any) -> Op[T]:
            return make(first(obj), *args, **kwargs) if first is not None else make(*args, **kwargs)

        async def awaited(*args: Any, **kwargs: Any) -> Any:
            return await obj._t.run(start(args, kwargs))

        def called(*args: Any, **kwargs: Any) -> Any:
            return finish(obj._t.run(start(args, kwargs)))

        # On AsyncKiln's classes a coroutine function, as an ``async def`` method would be.
        method: Any = awaited if isinstance(obj, AsyncPart) and finish is _same else called
        method.__name__ = method.__qualname__ = self._name
        method.__doc__ = self.__doc__
        method.__signature__ = self._public_signature()
        return method  # type: ignore[no-any-return]

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Called on the class (``Sandbox.exec(sandbox, ...)``): as the method of ``obj``."""
        return self.__get__(obj, type(obj))(*args, **kwargs)  # type: ignore[attr-defined]

    @property
    def __signature__(self) -> inspect.Signature:
        sig = self._public_signature()
        return sig.replace(
            parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *sig.parameters.values()]
        )

    def _public_signature(self) -> inspect.Signature:
        if self._signature is None:
            sig = inspect.signature(self._make)
            params = list(sig.parameters.values())[1 if self._first is not None else 0 :]
            self._signature = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
        return self._signature


def _same(value: Any) -> Any:
    return value


class Operation(_Bound[P, T]):
    @overload
    def __get__(self, obj: None, owner: Any) -> Operation[P, T]: ...
    @overload
    def __get__(self, obj: SyncPart, owner: Any) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncPart, owner: Any) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Any, owner: Any) -> Any:
        return self if obj is None else self._method(obj, _same)


class SandboxOperation(_Bound[P, SandboxInfo]):
    """An operation whose answer is a sandbox: a ``Sandbox`` (sync), or a :class:`PendingSandbox`
    (async: awaitable, and an ``async with`` that deletes it on exit)."""

    @overload
    def __get__(self, obj: None, owner: Any) -> SandboxOperation[P]: ...
    @overload
    def __get__(self, obj: SyncPart, owner: Any) -> Callable[P, Sandbox]: ...
    @overload
    def __get__(self, obj: AsyncPart, owner: Any) -> Callable[P, PendingSandbox]: ...
    def __get__(self, obj: Any, owner: Any) -> Any:
        return self if obj is None else self._method(obj, obj._sandbox)


def method(make: Callable[Concatenate[Any, P], Op[T]]) -> Operation[P, T]:
    """A generator method of a mixin below, run as an operation."""
    return Operation(make, _same)


def on_sandbox(make: Callable[Concatenate[str, P], Op[T]]) -> Operation[P, T]:
    """A protocol operation on the instance's sandbox (its first argument the sandbox id)."""
    return Operation(make, lambda part: part._id)


def plain(make: Callable[P, Op[T]]) -> Operation[P, T]:
    return Operation(make, None)


def sandbox_op(make: Callable[P, Op[SandboxInfo]]) -> SandboxOperation[P]:
    return SandboxOperation(make, None)


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)


# --------------------------------------------------------------------------------------------
# The classes' shared halves


class _OnServer:
    def __init__(self, transport: Any) -> None:
        self._t = transport


class _OnSandbox(_OnServer):
    def __init__(self, transport: Any, sandbox_id: str) -> None:
        super().__init__(transport)
        self._id = sandbox_id


class SnapshotsOps(_OnServer):
    list = plain(p.list_snapshots)
    delete = plain(p.delete_snapshot)


class VolumesOps(_OnServer):
    create = plain(p.create_volume)
    list = plain(p.list_volumes)
    delete = plain(p.delete_volume)


class FilesOps(_OnSandbox):
    read = on_sandbox(p.read)
    read_text = on_sandbox(p.read_text)
    write = on_sandbox(p.write)
    list = on_sandbox(p.list_files)
    stat = on_sandbox(p.stat)
    exists = on_sandbox(p.exists)
    mkdir = on_sandbox(p.mkdir)
    remove = on_sandbox(p.remove)
    upload = on_sandbox(p.upload)
    download = on_sandbox(p.download)


class ProcessesOps(_OnSandbox):
    start, list = on_sandbox(p.start_process), on_sandbox(p.list_processes)
    logs, signal, wait = on_sandbox(p.process_logs), on_sandbox(p.signal_process), on_sandbox(p.wait_process)


class SandboxOps:
    """One sandbox. ``with sandbox:`` (``async with`` on ``AsyncKiln``) deletes it on exit."""

    #: the classes of its parts: files, processes, terminals
    _parts: Tuple[Callable[[Any, str], Any], Callable[[Any, str], Any], Callable[[Any, str], Any]]

    def __init__(self, transport: Any, info: SandboxInfo) -> None:
        self._t = transport
        self.id = self._id = info.id
        self.name = info.name
        #: the info as of the last answer that carried it (create, get, start, stop)
        self.last_info = info
        files, processes, pty = self._parts
        self.files = files(transport, info.id)
        self.processes = processes(transport, info.id)
        #: terminals: ``pty.create(cols=, rows=, on_data=)``, ``pty.connect(id)``
        self.pty = pty(transport, info.id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, name={self.name!r})"

    @method
    def info(self) -> Op[SandboxInfo]:
        """The sandbox's current info, fetched."""
        self.last_info = yield from p.get(self._id)
        return self.last_info

    @method
    def start(self) -> Op[None]:
        self.last_info = yield from p.lifecycle(self._id, "start")

    @method
    def stop(self) -> Op[None]:
        self.last_info = yield from p.lifecycle(self._id, "stop")

    exec = on_sandbox(p.exec_)
    run_code = on_sandbox(p.run_code)
    preview_url = on_sandbox(p.preview_url)
    snapshot = on_sandbox(p.snapshot)
    delete = on_sandbox(p.delete)


class KilnOps:
    """A client of a Kiln server.

    ``url`` defaults to ``KILN_URL`` (else ``http://127.0.0.1:7420``), ``api_key`` to
    ``KILN_API_KEY``. ``timeout`` (seconds) bounds each read; ``None`` (the default) waits as
    long as the call runs, since commands carry their own ``timeout_ms``. ``with Kiln() as
    kiln:`` (``async with AsyncKiln() as kiln:``) closes its connections on exit.
    """

    _transport: Callable[[str, str, Optional[float], httpx.Limits], Any]
    #: the classes of its parts: snapshots, volumes
    _parts: Tuple[Callable[[Any], Any], Callable[[Any], Any]]

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
        max_connections: int = 100,
    ) -> None:
        self.url, key = resolve_settings(url, api_key)
        self._t = self._transport(self.url, key, timeout, _limits(max_connections))
        snapshots, volumes = self._parts
        self.snapshots = snapshots(self._t)
        self.volumes = volumes(self._t)

    def _sandbox(self, answer: Any) -> Any:
        raise NotImplementedError

    create = sandbox_op(p.create_sandbox)
    get = sandbox_op(p.get)
    get_or_create = sandbox_op(p.get_or_create)
    list = plain(p.list_sandboxes)
    health = plain(p.health)


__all__: List[str] = []
