"""The agent: accepts connections, dispatches requests, owns contexts, env and auto-stop."""

import json
import os
import selectors
import socket
import stat
import sys
import time

from .commands import Exec
from .connection import Connection, StdioConnection
from .files import (
    EntryStream,
    FileRead,
    FileWrite,
    file_entry,
    list_entries,
    open_regular,
    remove_path,
    scan_sorted,
    walk_entries,
)
from .limits import OOM_COUNTER_FILES, UNANSWERED, VERSION, WARM_IDLE, WARM_LATEST
from .loop import Loop
from .privileges import drop_privileges
from .state import STATE_SUFFIX, SnapshotPrepare, discard, state_file_context, state_file_name
from .util import describe_os_error, errno_name, log, log_exception
from .validate import (
    ProtocolError,
    field,
    is_argv,
    is_bool,
    is_count,
    is_env,
    is_id,
    is_language,
    is_mode,
    is_path,
    is_str,
)


class Agent:
    def __init__(self, config):
        self.config = config
        self.loop = Loop()
        self.listener = None
        self.connections = set()
        self.stdio = None
        self.contexts = {}
        self.base_env = dict(os.environ)
        self.env_overlay = {}
        self.oom_file = next((path for path in OOM_COUNTER_FILES if os.path.exists(path)), None)
        self.last_frame = time.monotonic()
        self.idle_ms = 0  # time between the frame being handled and the one before it
        self.active_at = self.last_frame  # last frame received or work ended: auto-stop's clock
        self.auto_stop_ms = None
        self.auto_stop_timer = None
        self.orphan_stop_ms = None  # set on unclaimed pool members (configure orphanStopMs)
        self.orphan_timer = None
        self.restores = {}  # Python context name -> what restoring its saved state brought back
        self.state_reports = []  # (conn, rid) of state_report requests waiting for restores
        self.handlers = {
            name: getattr(self, "req_" + name)
            for name in (
                "hello", "ping", "exec", "stdin", "stdin_end", "cancel", "run_code",
                "fs_write", "fs_read", "fs_stat", "fs_list", "fs_walk", "fs_mkdir",
                "fs_remove", "reload_env", "set_env", "configure", "snapshot_prepare",
                "state_report", "exit",
            )
        }  # fmt: skip
        # Terminals, background processes, port forwarding, code contexts: their own modules,
        # imported at their first request (the agent's start is on every cold create's path).
        self._ptys = None
        self._processes = None
        self._forwarding = False

    @property
    def ptys(self):
        if self._ptys is None:
            from .pty import Ptys

            self._ptys = Ptys(self)
            self.handlers.update(self._ptys.handlers())
        return self._ptys

    @property
    def processes(self):
        if self._processes is None:
            from .processes import Processes

            self._processes = Processes(self)
            self.handlers.update(self._processes.handlers())
        return self._processes

    def handler(self, kind):
        """The request's handler; a module's requests load that module on first use."""
        handler = self.handlers.get(kind)
        if handler is None:
            if kind.startswith("pty_"):
                self.ptys  # noqa: B018 (registers its handlers)
            elif kind.startswith("proc_"):
                self.processes  # noqa: B018
            elif kind.startswith("port_") and not self._forwarding:
                from . import port_forward

                self._forwarding = True
                self.handlers.update(port_forward.handlers(self))
            handler = self.handlers.get(kind)
        return handler

    def serve(self, stdio=False):
        if stdio:
            self.serve_stdio()
        try:
            self.env_overlay = self.read_env_file()
        except (OSError, ValueError) as exc:
            log(f"ignoring {self.config.env_file}: {exc}")
        try:
            self.set_auto_stop(self.read_agent_file())
        except (OSError, ValueError, ProtocolError) as exc:
            log(f"ignoring {self.config.agent_file}: {exc}")
        self.listen()  # as root, if started as root: the socket directory is root's
        self.loop.child_uid = drop_privileges()
        # Contexts with a saved state (from a snapshot) start now, so state_report can tell.
        saved = self.take_saved_states()
        for name in sorted(saved):
            self.context("python", name).start(saved[name])
        # The default Python context is warmed once the agent is idle (or by the first run_code):
        # a kernel starting beside a sandbox's first command would take CPU from it (see warm_default).
        if "default" not in saved:
            self.warm_started = time.monotonic()
            self.loop.call_later(WARM_IDLE, self.warm_default)
        self.loop.run()

    def warm_default(self):
        """Start the default Python context's kernel once no frame came in for WARM_IDLE and no
        command runs, or WARM_LATEST after the agent started, whichever is first; run_code starts
        it at once. A sandbox created for a command or two then never pays a kernel it does not
        use beside them, and an idle one (a pool member) is warm shortly after it started."""
        context = self.context("python", "default")
        if context.kernel is not None or context.busy:
            return  # run_code got there first
        now = time.monotonic()
        quiet = now - self.last_frame
        if now - self.warm_started < WARM_LATEST and (quiet < WARM_IDLE or self.running()):
            self.loop.call_later(max(WARM_IDLE - quiet, 0.01), self.warm_default)
            return
        context.start()

    def serve_stdio(self):
        """Serve the one client that may attach to the container's stdin/stdout (the host that
        created the sandbox). Descriptors 0 and 1 become /dev/null, so no child can inherit the
        channel; the agent keeps private, non-inheritable copies (PEP 446)."""
        try:
            # Only a pipe or socket can carry a client (docker attach: pipes). Started without an
            # open stdin (/dev/null, a file, a terminal: another engine, a plain `docker run`),
            # the agent serves its socket alone.
            if not all(stat.S_ISFIFO(os.fstat(fd).st_mode) or stat.S_ISSOCK(os.fstat(fd).st_mode) for fd in (0, 1)):
                return
            rfd, wfd = os.dup(0), os.dup(1)
        except OSError as exc:
            log(f"no stdio channel: {exc}")
            return
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        try:
            self.stdio = StdioConnection(self, rfd, wfd)
        except OSError as exc:
            log(f"no stdio channel: {exc}")
            for fd in (rfd, wfd):
                self.loop.watch(fd, 0)
                os.close(fd)

    def connection_opened(self, conn):
        """The stdio client sent its first byte: from now on it counts like an accepted one."""
        self.connections.add(conn)

    def shutdown(self):
        if self._processes is not None or self._ptys is not None:
            self.processes.terminate_all(self.ptys.running())  # SIGTERM, a grace, then SIGKILL
        self.loop.kill_children()
        # State files written for a snapshot (committed while the agent runs) must not be
        # restored when this sandbox starts again.
        try:
            for path in self.state_files():
                discard(path)
        except OSError:
            pass
        if self.listener is not None:
            try:
                os.unlink(self.config.socket_path)
            except OSError:
                pass

    def listen(self):
        """Bind a temp name and rename it into place: the socket existing means ready."""
        path = self.config.socket_path
        temp = f"{path}.{os.getpid()}.tmp"
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # the socket file is created 0600
        try:
            sock.bind(temp)
        finally:
            os.umask(umask)
        sock.listen(128)
        sock.setblocking(False)
        os.rename(temp, path)
        self.listener = sock
        self.loop.watch(sock.fileno(), selectors.EVENT_READ, self._accept)

    def _accept(self, mask):
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log(f"accept failed: {exc}")
                return
            sock.setblocking(False)
            self.connections.add(Connection(self, sock))

    # environment, kernels, OOM counter

    def read_agent_file(self):
        """autoStopMs from /etc/kiln/agent.json; None if the file or the setting is absent."""
        try:
            with open(self.config.agent_file, "rb") as f:
                settings = json.load(f)
        except FileNotFoundError:
            return None
        if not isinstance(settings, dict):
            raise ValueError("it must hold a JSON object")
        return field(settings, "autoStopMs", is_count, None)

    def read_env_file(self):
        try:
            with open(self.config.env_file, "rb") as f:
                env = json.load(f)
        except FileNotFoundError:
            return {}
        if not is_env(env):
            raise ValueError(f"{self.config.env_file} must hold a JSON object of strings")
        return env

    def sandbox_env(self, extra=None):
        env = dict(self.base_env)
        env.update(self.env_overlay)
        if extra:
            env.update(extra)
        return env

    def kernel_argv(self, language):
        if language == "python":
            # -P, not -I: user code should see PYTHONPATH and user site-packages, but not the
            # kernel's own directory on sys.path.
            return [sys.executable, "-P", os.path.join(self.config.runtime_dir, "kernel_python.py")]
        # kernel_js.mjs parses cells with the acorn vendored in Node, reachable only this way.
        return ["node", "--expose-internals", os.path.join(self.config.runtime_dir, "kernel_js.mjs")]

    def kernel_cwd(self):
        return self.config.workdir if os.path.isdir(self.config.workdir) else "/"

    def context(self, language, name):
        key = (language, name)
        if key not in self.contexts:
            from .contexts import Context

            self.contexts[key] = Context(self, language, name)
        return self.contexts[key]

    # saved interpreter state

    def python_state_dir(self):
        return os.path.join(self.config.state_dir, "python")

    def state_path(self, context):
        return os.path.join(self.python_state_dir(), state_file_name(context.name))

    def state_files(self):
        """Paths of the `<context>.pkl` files in the state directory."""
        directory = self.python_state_dir()
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return [os.path.join(directory, name) for name in names if name.endswith(STATE_SUFFIX)]

    def take_saved_states(self):
        """{context name: state file} for the Python contexts to restore at start.

        Each `<context>.pkl` is renamed `<context>.pkl.restored` first: it is applied once, by
        this start only (not by a kernel restarted later, nor by the next start of the sandbox),
        even if loading it kills the kernel."""
        try:
            paths = self.state_files()
        except OSError as exc:
            log(f"cannot look for saved state: {describe_os_error(exc)}")
            return {}
        taken = {}
        for path in paths:
            try:
                name = state_file_context(os.path.basename(path))
            except ValueError as exc:
                log(f"ignoring a saved state: {exc}")
                continue
            try:
                os.replace(path, path + ".restored")
            except OSError as exc:
                self.restores[name] = {"restored": [], "failed": [], "error": describe_os_error(exc)}
            else:
                taken[name] = path + ".restored"
        return taken

    def restored(self, name, report):
        """A kernel finished restoring its context's state, or died trying."""
        self.restores[name] = report
        self.touch()
        self._answer_state_reports()

    def _answer_state_reports(self):
        """Answer state_report once no kernel is still restoring."""
        if any(context.kernel and context.kernel.restoring for context in self.contexts.values()):
            return
        waiting, self.state_reports = self.state_reports, []
        for conn, rid in waiting:
            conn.reply(rid, "ok", restored=self.restores)

    # auto-stop

    def touch(self):
        self.active_at = time.monotonic()

    def busy(self):
        """Whether a command or a kernel is at work: auto-stop's clock only runs while not."""
        commands = any(isinstance(r, Exec) for conn in self.connections for r in conn.active.values())
        return commands or any(context.busy for context in self.contexts.values())

    def set_auto_stop(self, ms):
        """Stop the agent once it has been idle for ms milliseconds (None or 0: never)."""
        self.auto_stop_ms = ms or None
        if self.auto_stop_timer is not None:
            self.auto_stop_timer.cancel()
            self.auto_stop_timer = None
        if self.auto_stop_ms:
            self._check_idle()

    def _check_idle(self):
        limit = self.auto_stop_ms / 1000
        idle = time.monotonic() - self.active_at
        busy = self.busy()
        if idle >= limit and not busy:
            log(f"stopping: idle for {idle * 1000:.0f} ms (autoStopMs {self.auto_stop_ms:g})")
            self.loop.stop()
            return
        # While busy, look again a full period later: the work touches active_at when it ends.
        self.auto_stop_timer = self.loop.call_later(limit if busy else limit - idle, self._check_idle)

    def oom_kills(self):
        """The memory cgroup's oom_kill counter, or None when it cannot be read."""
        if self.oom_file is None:
            return None
        try:
            with open(self.oom_file) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def oom_rose_since(self, before):
        now = self.oom_kills()
        return before is not None and now is not None and now > before

    # frames

    def handle(self, conn, head, body):
        now = time.monotonic()
        self.idle_ms = round((now - self.last_frame) * 1000)
        self.last_frame = self.active_at = now
        try:
            header = json.loads(head)
        except (ValueError, RecursionError):
            conn.error(None, "EPROTO", "frame header is not valid JSON")
            return
        if not isinstance(header, dict):
            conn.error(None, "EPROTO", "frame header is not a JSON object")
            return
        kind = header.get("type")
        rid = header.get("id") if is_id(header.get("id")) else None
        if header.get("fieldsInBody") is True:  # a request too big for a header: fields in the body
            try:
                fields = json.loads(body)
            except (ValueError, RecursionError, UnicodeDecodeError):
                fields = None
            if not isinstance(fields, dict):
                conn.error(rid, "EPROTO", "fieldsInBody: the body is not a JSON object")
                return
            header, body = {**fields, "type": kind, "id": header.get("id")}, b""
        try:
            self._dispatch(conn, kind, rid, header, body)
        except ProtocolError as exc:
            if kind in UNANSWERED:
                log(f"ignoring a malformed {kind} request: {exc}")
            else:
                conn.error(rid, "EPROTO", str(exc))
        except OSError as exc:
            conn.error(rid, errno_name(exc), describe_os_error(exc))
        except ValueError as exc:  # e.g. a NUL byte in an argument
            conn.error(rid, "EINVAL", str(exc))
        except Exception as exc:
            log_exception("internal error")
            conn.error(rid, "EIO", f"internal error: {exc!r}")

    def _dispatch(self, conn, kind, rid, header, body):
        handler = self.handler(kind) if isinstance(kind, str) else None
        if handler is None:
            raise ProtocolError(f"unknown request type {kind!r}")
        if kind in UNANSWERED:  # their id (0) is not theirs to own
            handler(conn, header, body)
            return
        if rid is None:
            raise ProtocolError("missing or invalid id")
        active = conn.active.get(rid)
        if active is not None and not (kind == "fs_write" and isinstance(active, FileWrite)):
            raise ProtocolError(f"id {rid} is already in use")
        handler(conn, rid, header, body)

    def running(self):
        return sum(
            1 for conn in self.connections for request in conn.active.values() if request.cancellable
        )

    # requests

    def req_hello(self, conn, rid, header, body):
        conn.reply(rid, "ok", version=VERSION, pid=os.getpid())

    def req_exit(self, conn, rid, header, body):
        """The sandbox is being deleted: answer, SIGKILL every process group started here, end
        at once. The container's main process ending by itself spares the engine killing it."""
        conn.reply(rid, "ok")
        self.loop.kill_children()
        os._exit(0)

    def req_ping(self, conn, rid, header, body):
        conn.reply(rid, "ok", idleMs=self.idle_ms, running=self.running())

    def req_exec(self, conn, rid, header, body):
        argv = field(header, "argv", is_argv)
        cwd = field(header, "cwd", is_path, self.config.workdir)
        env = self.sandbox_env(field(header, "env", is_env, {}))
        timeout_ms = field(header, "timeoutMs", is_count, 0)
        cap = int(field(header, "maxOutputBytes", is_count, sys.maxsize))
        with_stdin = field(header, "stdin", is_bool, False)
        conn.active[rid] = Exec(self, conn, rid, argv, cwd, env, timeout_ms, cap, with_stdin)

    def req_stdin(self, conn, header, body):
        target = conn.active.get(field(header, "target", is_id))
        if isinstance(target, Exec):
            target.write_stdin(body)

    def req_stdin_end(self, conn, header, body):
        target = conn.active.get(field(header, "target", is_id))
        if isinstance(target, Exec):
            target.end_stdin()

    def req_cancel(self, conn, header, body):
        target = conn.active.get(field(header, "target", is_id))
        if target is not None and (target.cancellable or getattr(target, "detachable", False)):
            target.cancel()

    def req_run_code(self, conn, rid, header, body):
        language = field(header, "language", is_language)
        name = field(header, "context", is_str, "default")
        code = field(header, "code", is_str)
        timeout_ms = field(header, "timeoutMs", is_count, 0)
        cap = int(field(header, "maxOutputBytes", is_count, sys.maxsize))
        result_cap = int(field(header, "maxResultBytes", is_count, sys.maxsize))
        context = self.context(language, name)
        from .run_code import RunCode

        run = RunCode(self, conn, rid, context, code, timeout_ms, cap, result_cap)
        conn.active[rid] = run
        context.submit(run)

    def req_fs_write(self, conn, rid, header, body):
        offset = field(header, "offset", is_count)
        final = field(header, "final", is_bool)
        write = conn.active.get(rid)
        if write is None:
            path = field(header, "path", is_path)
            write = FileWrite(conn, rid, path, field(header, "mode", is_mode, None))
            conn.active[rid] = write
        write.chunk(offset, body, final)

    def req_fs_read(self, conn, rid, header, body):
        path = field(header, "path", is_path)
        limit = field(header, "maxBytes", is_count, None)
        truncate = field(header, "truncate", is_bool, False)
        read = FileRead(conn, rid, open_regular(path), None if limit is None else int(limit), truncate)
        conn.active[rid] = read
        read.resume()

    def req_fs_stat(self, conn, rid, header, body):
        path = field(header, "path", is_path)
        conn.reply(rid, "ok", entry=file_entry(path, os.lstat(path)))

    def req_fs_list(self, conn, rid, header, body):
        self._stream_entries(conn, rid, list_entries(scan_sorted(field(header, "path", is_path))))

    def req_fs_walk(self, conn, rid, header, body):
        self._stream_entries(conn, rid, walk_entries(scan_sorted(field(header, "path", is_path))))

    def _stream_entries(self, conn, rid, entries):
        stream = EntryStream(conn, rid, entries)
        conn.active[rid] = stream
        stream.resume()

    def req_fs_mkdir(self, conn, rid, header, body):
        os.makedirs(field(header, "path", is_path), exist_ok=True)
        conn.reply(rid, "ok")

    def req_fs_remove(self, conn, rid, header, body):
        remove_path(field(header, "path", is_path), field(header, "recursive", is_bool, False))
        conn.reply(rid, "ok")

    def req_reload_env(self, conn, rid, header, body):
        self.apply_env(self.read_env_file())
        conn.reply(rid, "ok")

    def req_set_env(self, conn, rid, header, body):
        # The host claims a pooled sandbox: the environment arrives inline, at once; the host
        # writes /etc/kiln/env.json in the background so a restarted agent finds the same.
        self.apply_env(field(header, "env", is_env))
        conn.reply(rid, "ok")

    def req_configure(self, conn, rid, header, body):
        # Like set_env: the settings arrive inline while the host writes /etc/kiln/agent.json
        # in the background, where a restarted agent finds them.
        self.set_auto_stop(field(header, "autoStopMs", is_count, None))
        self.set_orphan_stop(field(header, "orphanStopMs", is_count, None))
        conn.reply(rid, "ok")

    # an unclaimed pool member whose owner is gone

    def set_orphan_stop(self, ms):
        """Stop once no client has been connected for ms milliseconds (None or 0: never).

        The warm pool sets this on the members it starts (its process keeps a connection open
        to each); a claim's `configure` replaces the settings and so clears it. A member whose
        owner process died (its connection closed) then stops itself instead of using CPU and
        memory until some Kiln sweeps it."""
        self.orphan_stop_ms = ms or None
        if self.orphan_timer is not None:
            self.orphan_timer.cancel()
            self.orphan_timer = None
        self.connection_closed()

    def connection_closed(self):
        """Called when a connection closes: with none left, start the orphan clock."""
        if self.orphan_stop_ms and not self.connections and self.orphan_timer is None:
            self.orphan_timer = self.loop.call_later(self.orphan_stop_ms / 1000, self._check_orphan)

    def _check_orphan(self):
        self.orphan_timer = None
        if self.orphan_stop_ms and not self.connections:
            log(f"stopping: an unclaimed pool member with no client for {self.orphan_stop_ms:g} ms")
            self.loop.stop()

    def req_snapshot_prepare(self, conn, rid, header, body):
        os.makedirs(self.python_state_dir(), exist_ok=True)
        for path in self.state_files():  # from an earlier snapshot: stale by now
            os.unlink(path)
        prepare = SnapshotPrepare(conn, rid)
        for context in list(self.contexts.values()):
            if context.language != "python" or not context.holds_state:
                continue
            if context.busy:  # never interrupted for a snapshot
                prepare.skip_busy(context)
            else:
                prepare.save(context, self.state_path(context))
        prepare.reply_when_done()

    def req_state_report(self, conn, rid, header, body):
        self.state_reports.append((conn, rid))
        self._answer_state_reports()

    def apply_env(self, env):
        self.env_overlay = env
        for context in list(self.contexts.values()):
            context.refresh()
