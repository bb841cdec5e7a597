"""Kiln in-sandbox agent: serves the protocol in PROTOCOL.md on a unix socket.

One agent runs in every sandbox (`python3 -I /opt/kiln/agent.py` under tini, as uid 1000). It
runs commands (`exec`), hands code to one kernel process per (language, context) (`run_code`)
and does file operations (`fs_*`) for any number of client connections.

Everything happens on one thread in one `selectors` loop over non-blocking descriptors; child
exits arrive as SIGCHLD through the signal wakeup fd. Stdlib only. The agent sits in every
pooled sandbox, so modules that only some requests need are imported where they are used.
"""

import collections
import errno
import heapq
import json
import os
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

VERSION = "1"

MAX_HEADER = 1 << 20  # frame limits, both directions
MAX_BODY = 4 << 20
CONGESTED = 4 << 20  # unsent bytes above which a connection's producers pause
STDIN_BACKLOG_MAX = 4 << 20  # unwritten stdin bytes above which a connection is not read
RECV_SIZE = 256 << 10
PIPE_READ_SIZE = 64 << 10
FILE_CHUNK = 256 << 10  # fs_read `data` frames
ENTRY_BATCH = 256 << 10  # encoded FileEntry bytes per fs_list / fs_walk frame
DRAIN_LIMIT = 4 << 20  # most bytes taken from one pipe when draining it regardless of congestion
KERNEL_LINE_MAX = 16 << 20  # longest kernel -> agent line; longer ones are dropped
ERROR_VALUE_MAX = 16 << 10  # characters of a kernel error's value / traceback passed on
ERROR_TRACEBACK_MAX = 32 << 10
STARTUP_TAIL_MAX = 4 << 10  # kernel output kept to explain a failed start
REASON_MAX = 4 << 10  # characters of why a variable was not saved or restored

EXIT_DRAIN_GRACE = 1.0  # seconds to wait for exec pipes to close once the group is killed
INTERRUPT_GRACE = 2.0  # seconds from SIGINT to SIGKILL for a kernel that must stop
KERNEL_START_TIMEOUT = 30.0  # also bounds restoring a context's saved state
SAVE_TIMEOUT = 30.0  # seconds a kernel gets to save its state for snapshot_prepare

LANGUAGES = ("python", "javascript", "typescript")
# Requests that name their target in `target`, carry id 0 and never get a reply.
UNANSWERED = ("stdin", "stdin_end", "cancel")
OOM_COUNTER_FILES = (
    "/sys/fs/cgroup/memory.events",  # cgroup v2
    "/sys/fs/cgroup/memory/memory.oom_control",  # cgroup v1
)


def log(message):
    sys.stderr.write(f"kiln-agent: {message}\n")
    sys.stderr.flush()


def log_exception(what):
    import traceback

    log(f"{what}:\n{traceback.format_exc()}")


def errno_name(exc):
    return errno.errorcode.get(exc.errno, "EIO") if exc.errno else "EIO"


def describe_os_error(exc):
    if exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def close_fds(*fds):
    for fd in fds:
        if fd is not None:
            os.close(fd)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def raise_oom_score():
    """preexec_fn: make the child, not the agent, the OOM killer's first choice."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def clip(text, limit):
    return text if len(text) <= limit else text[:limit] + "\n[truncated]"


def clip_tail(text, limit):
    """Keep the end of a traceback, where the error is."""
    return text if len(text) <= limit else "[truncated]\n" + text[-limit:]


def encoded_size(value):
    return len(json.dumps(value))


# --- request validation ---------------------------------------------------------------------


class ProtocolError(Exception):
    """A request that does not follow PROTOCOL.md; answered with EPROTO."""


REQUIRED = object()


def field(header, name, valid, default=REQUIRED):
    """header[name] checked with `valid`; absent or null gives `default` (or EPROTO if required)."""
    value = header.get(name)
    if value is None:
        if default is REQUIRED:
            raise ProtocolError(f"missing field {name!r}")
        return default
    if not valid(value):
        raise ProtocolError(f"invalid field {name!r}")
    return value


def is_id(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_str(v):
    return isinstance(v, str)


def is_bool(v):
    return isinstance(v, bool)


def is_count(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2**53


def is_mode(v):
    return is_id(v) and 0 <= v <= 0o7777


def is_path(v):
    return isinstance(v, str) and v.startswith("/") and "\0" not in v


def is_argv(v):
    return isinstance(v, list) and v and all(isinstance(a, str) for a in v)


def is_env(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def is_language(v):
    return v in LANGUAGES


# --- event loop -----------------------------------------------------------------------------


class Timer:
    __slots__ = ("callback",)

    def __init__(self, callback):
        self.callback = callback

    def cancel(self):
        self.callback = None


class Loop:
    """The agent's only thread: a selector, timers, and reaping of the children it spawns."""

    def __init__(self):
        # Created first, so these descriptors are 3, 4 and 5 for the agent's whole life (see
        # Kernel.__init__, which relies on no pipe of ours ever being numbered 3 or 4).
        self._selector = selectors.DefaultSelector()
        self._wakeup, wakeup_w = socket.socketpair()
        self._wakeup_w = wakeup_w  # kept open: the interpreter writes signal numbers to it
        self._wakeup.setblocking(False)
        wakeup_w.setblocking(False)
        signal.set_wakeup_fd(wakeup_w.fileno(), warn_on_full_buffer=False)
        # Only a Python-level handler makes SIGCHLD reach the wakeup fd; reaping happens below.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self._timers = []
        self._timer_seq = 0
        self._compact_at = 64
        self._children = {}  # pid -> (Popen, on_exit)
        self._stopping = False
        self.watch(self._wakeup.fileno(), selectors.EVENT_READ, self._on_wakeup)

    def watch(self, fd, events, callback=None):
        """Call callback(mask) when fd is ready for `events`; events=0 stops watching fd."""
        try:
            key = self._selector.get_key(fd)
        except KeyError:
            key = None
        if not events:
            if key is not None:
                self._selector.unregister(fd)
        elif key is None:
            self._selector.register(fd, events, callback)
        else:
            self._selector.modify(fd, events, callback or key.data)

    def call_later(self, delay, callback):
        timer = Timer(callback)
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._timer_seq, timer))
        if len(self._timers) >= self._compact_at:
            # Cancelled timers stay queued until due; drop them before they pile up.
            self._timers = [entry for entry in self._timers if entry[2].callback]
            heapq.heapify(self._timers)
            self._compact_at = max(64, 2 * len(self._timers))
        return timer

    def run(self):
        """Serve until stop() is called."""
        while not self._stopping:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, mask in self._selector.select(timeout):
                if self._still_watched(key):
                    self.call(key.data, mask)
            self._run_due_timers()

    def stop(self):
        """Make run() return once the current round of callbacks is over."""
        self._stopping = True

    def _still_watched(self, key):
        """False if an earlier callback of this round stopped watching (or reused) key.fd."""
        try:
            return self._selector.get_key(key.fd).data == key.data
        except KeyError:
            return False

    def _run_due_timers(self):
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            callback, timer.callback = timer.callback, None
            if callback is not None:
                self.call(callback)

    @staticmethod
    def call(callback, *args):
        """Run a callback; a bug in one request must not take the agent down."""
        try:
            callback(*args)
        except Exception:
            log_exception("internal error")

    def spawn(self, argv, on_exit, *, stdin, stdout, stderr, cwd, env, pass_fds=(), setup=None):
        """Start argv in its own session and process group; on_exit(returncode) once reaped."""

        def preexec():
            raise_oom_score()
            if setup is not None:
                setup()

        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self._children[proc.pid] = (proc, on_exit)
        return proc

    def _on_wakeup(self, mask):
        try:
            while self._wakeup.recv(4096):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self):
        for pid in list(self._children):
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                continue
            # Not reaped yet, so its pid (= its process group id) cannot have been reused: kill
            # whatever it left running in its group, then collect the status.
            kill_group(pid)
            proc, on_exit = self._children.pop(pid)
            proc.returncode = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            self.call(on_exit, proc.returncode)

    def kill_children(self):
        for pid in self._children:
            kill_group(pid)


# --- connections ----------------------------------------------------------------------------


class Connection:
    """One client: frame parsing, a bounded outbound queue, and the requests it started."""

    def __init__(self, agent, sock):
        self.agent = agent
        self.loop = agent.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outq = collections.deque()
        self.unsent = 0
        self.active = {}  # request id -> Request still in progress
        self.feeders = set()  # producers waiting for the outbound queue to drain
        self.resume_scheduled = False
        self.reading = True
        self.events = 0
        self.closed = False
        self._update_interest()

    @property
    def congested(self):
        return self.unsent > CONGESTED

    def wait_drain(self, feeder):
        """feeder.resume() will be called once the outbound queue is short again."""
        self.feeders.add(feeder)

    def send(self, header, body=b""):
        if self.closed:
            return
        head = json.dumps(header, separators=(",", ":")).encode()
        self.outq.append(struct.pack(">II", len(head), len(body)) + head)
        if body:
            self.outq.append(body)
        self.unsent += 8 + len(head) + len(body)
        self._flush()

    def reply(self, rid, kind, **fields):
        self.send({"type": kind, "id": rid, **fields})

    def error(self, rid, code, message):
        self.reply(rid, "error", code=code, message=message)

    def input_progress(self):
        """Called when stdin backlog shrinks: reading may resume."""
        if not self.reading and not self.closed:
            self._update_interest()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.loop.watch(self.fd, 0)
        self.sock.close()
        self.outq.clear()
        self.unsent = 0
        for request in list(self.active.values()):
            request.cancel()
        self.active.clear()
        # Pipes paused for this connection now feed nobody; they must not stay paused.
        feeders, self.feeders = self.feeders, set()
        for feeder in feeders:
            feeder.resume()
        self.agent.connections.discard(self)

    def _update_interest(self):
        backlog = sum(request.input_backlog() for request in self.active.values())
        self.reading = backlog <= STDIN_BACKLOG_MAX
        events = (selectors.EVENT_READ if self.reading else 0) | (
            selectors.EVENT_WRITE if self.outq else 0
        )
        if events != self.events:
            self.events = events
            self.loop.watch(self.fd, events, self._on_ready)

    def _on_ready(self, mask):
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            self._receive()

    def _receive(self):
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbuf += data
        self._parse()
        if not self.closed:
            self._update_interest()

    def _parse(self):
        buf, pos = self.inbuf, 0
        while len(buf) - pos >= 8 and not self.closed:
            head_len, body_len = struct.unpack_from(">II", buf, pos)
            if head_len > MAX_HEADER or body_len > MAX_BODY:
                log(f"closing a connection: frame of {head_len}+{body_len} bytes is over the limits")
                self.close()
                return
            end = pos + 8 + head_len + body_len
            if len(buf) < end:
                break
            head = bytes(buf[pos + 8 : pos + 8 + head_len])
            body = bytes(buf[pos + 8 + head_len : end])
            pos = end
            self.agent.handle(self, head, body)
        del buf[:pos]

    def _flush(self):
        while self.outq:
            chunk = self.outq[0]
            try:
                sent = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            self.unsent -= sent
            if sent < len(chunk):
                self.outq[0] = memoryview(chunk)[sent:]
                break
            self.outq.popleft()
        if self.feeders and not self.congested and not self.resume_scheduled:
            # Resume from the loop, not from inside a producer's send().
            self.resume_scheduled = True
            self.loop.call_later(0, self._resume_feeders)
        self._update_interest()

    def _resume_feeders(self):
        self.resume_scheduled = False
        feeders, self.feeders = self.feeders, set()
        for feeder in feeders:
            feeder.resume()


# --- pipes ----------------------------------------------------------------------------------


class PipeReader:
    """Reads a non-blocking pipe into owner.pipe_data(tag, data) and owner.pipe_eof(tag).

    While the connection the data goes to (owner.feeding()) has too much unsent, the reader
    stops watching the pipe: the writer then blocks instead of the agent buffering without end.
    """

    def __init__(self, loop, fd, tag, owner):
        self.loop, self.fd, self.tag, self.owner = loop, fd, tag, owner
        os.set_blocking(fd, False)
        self.resume()

    @property
    def open(self):
        return self.fd is not None

    def resume(self):
        if self.fd is not None:
            self.loop.watch(self.fd, selectors.EVENT_READ, self._on_readable)

    def drain(self):
        """Take what the pipe holds right now (bounded), whatever the congestion."""
        total = 0
        while total < DRAIN_LIMIT:
            count = self._read()
            if not count:
                return
            total += count

    def close(self):
        if self.fd is not None:
            self.loop.watch(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def _on_readable(self, mask):
        conn = self.owner.feeding()
        if conn is not None and conn.congested:
            self.loop.watch(self.fd, 0)
            conn.wait_drain(self)
        else:
            self._read()

    def _read(self):
        """Read one chunk; the number of bytes read, 0 if none are available or at EOF."""
        if self.fd is None:
            return 0
        try:
            data = os.read(self.fd, PIPE_READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError:
            data = b""
        if not data:
            self.close()
            self.owner.pipe_eof(self.tag)
            return 0
        self.owner.pipe_data(self.tag, data)
        return len(data)


class PipeWriter:
    """Writes to a non-blocking pipe, keeping what the reader has not taken yet."""

    def __init__(self, loop, fd, on_progress=None):
        self.loop, self.fd, self.on_progress = loop, fd, on_progress
        self.pending = bytearray()
        self.ending = False
        os.set_blocking(fd, False)

    def write(self, data):
        if self.fd is not None:
            self.pending += data
            self._flush()

    def end(self):
        """Close the pipe once everything written so far is through."""
        self.ending = True
        if self.fd is not None:
            self._flush()

    def close(self):
        if self.fd is not None:
            self.loop.watch(self.fd, 0)
            os.close(self.fd)
            self.fd = None
        self.pending = bytearray()

    def _flush(self, mask=None):
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                break
            except OSError:  # the reader is gone: what is left cannot be delivered
                self.close()
                break
            del self.pending[:written]
        if self.fd is not None:
            if self.pending:
                self.loop.watch(self.fd, selectors.EVENT_WRITE, self._flush)
            elif self.ending:
                self.close()
            else:
                self.loop.watch(self.fd, 0)
        if self.on_progress is not None:
            self.on_progress()


# --- requests -------------------------------------------------------------------------------


class Request:
    """Something a connection started that is still in progress (kept in conn.active)."""

    cancellable = False  # whether a `cancel` request may target it (and whether ping counts it)

    def __init__(self, conn, rid):
        self.conn, self.id = conn, rid

    def send(self, kind, body=b"", **fields):
        self.conn.send({"type": kind, "id": self.id, **fields}, body)

    def input_backlog(self):
        return 0

    def retire(self):
        if self.conn.active.get(self.id) is self:
            del self.conn.active[self.id]
        self.conn.agent.touch()  # work ending is activity: auto-stop counts idle time from here


class OutputRequest(Request):
    """A request whose stdout/stderr are forwarded up to maxOutputBytes per stream."""

    cancellable = True

    def __init__(self, conn, rid, cap):
        super().__init__(conn, rid)
        self.cap = cap
        self.forwarded = {"stdout": 0, "stderr": 0}
        self.truncated = False

    def output(self, stream, data):
        room = self.cap - self.forwarded[stream]
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        if data:
            self.forwarded[stream] += len(data)
            self.send(stream, data)


class Exec(OutputRequest):
    """`exec`: one command in its own process group."""

    def __init__(self, agent, conn, rid, argv, cwd, env, timeout_ms, cap, with_stdin):
        super().__init__(conn, rid, cap)
        self.agent = agent
        self.loop = agent.loop
        self.kill_reason = None  # "timeout" or "killed" once the agent killed the group
        self.finished = False
        self.oom_before = agent.oom_kills()
        self.started = time.monotonic()
        self.ended = None
        self.drain_timer = None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if with_stdin else (None, None)
        try:
            self.proc = self.loop.spawn(
                argv,
                self._on_exit,
                stdin=subprocess.DEVNULL if in_r is None else in_r,
                stdout=out_w,
                stderr=err_w,
                cwd=cwd,
                env=env,
            )
        except BaseException:
            close_fds(out_r, err_r, in_w)
            raise
        finally:
            close_fds(out_w, err_w, in_r)
        self.pipes = [
            PipeReader(self.loop, out_r, "stdout", self),
            PipeReader(self.loop, err_r, "stderr", self),
        ]
        self.stdin = None if in_w is None else PipeWriter(self.loop, in_w, conn.input_progress)
        self.timer = self.loop.call_later(timeout_ms / 1000, self._on_timeout) if timeout_ms else None

    def feeding(self):
        return self.conn

    def pipe_data(self, tag, data):
        self.output(tag, data)

    def pipe_eof(self, tag):
        self._finish_if_done()

    def input_backlog(self):
        return len(self.stdin.pending) if self.stdin is not None else 0

    def write_stdin(self, data):
        if self.stdin is not None:
            self.stdin.write(data)

    def end_stdin(self):
        if self.stdin is not None:
            self.stdin.end()

    def cancel(self):
        self._kill("killed")

    def _on_timeout(self):
        self._kill("timeout")

    def _kill(self, reason):
        if self.ended is None:  # once reaped, the pid may belong to someone else
            self.kill_reason = self.kill_reason or reason
            kill_group(self.proc.pid)

    def _on_exit(self, returncode):
        # The loop has already SIGKILLed what was left in the group; wait for the pipes to close.
        self.ended = time.monotonic()
        if self.timer is not None:
            self.timer.cancel()
        if self.stdin is not None:
            self.stdin.close()
            self.conn.input_progress()
        if any(pipe.open for pipe in self.pipes):
            # A process that left the group (setsid) may hold them open forever.
            self.drain_timer = self.loop.call_later(EXIT_DRAIN_GRACE, self._stop_draining)
        self._finish_if_done()

    def _stop_draining(self):
        for pipe in self.pipes:
            pipe.drain()
            pipe.close()
        self._finish_if_done()

    def _finish_if_done(self):
        if self.finished or self.ended is None or any(pipe.open for pipe in self.pipes):
            return
        self.finished = True
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        code = self.proc.returncode
        exit_code = 128 - code if code < 0 else code
        self.send(
            "exit",
            exitCode=exit_code,
            status=self._status(code, exit_code),
            truncated=self.truncated,
            durationMs=round((self.ended - self.started) * 1000),
        )
        self.retire()

    def _status(self, code, exit_code):
        if self.kill_reason:
            return self.kill_reason
        # 137 also covers a shell reporting that its child was SIGKILLed.
        if exit_code == 128 + signal.SIGKILL and self.agent.oom_rose_since(self.oom_before):
            return "oom"
        if code == -signal.SIGKILL:
            return "killed"
        return "ok" if code == 0 else "error"


class FileWrite(Request):
    """`fs_write`: chunks go to a temp file beside the target, renamed over it at the end."""

    def __init__(self, conn, rid, path, mode):
        super().__init__(conn, rid)
        self.path, self.mode = path, mode
        self.size = 0
        self.fd = None
        self.temp = None
        self.failed = False
        try:
            self._open()
        except OSError as exc:
            self._fail(exc)

    def chunk(self, offset, data, final):
        if not self.failed:
            try:
                if offset != self.size:
                    raise OSError(errno.EINVAL, f"expected offset {self.size}, got {offset}")
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
                self.size += len(data)
                if final:
                    self._commit()
            except OSError as exc:
                self._fail(exc)
        if final:
            self.retire()

    def cancel(self):
        self._discard()

    def _open(self):
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), self.path)
        if self.mode is None and st is not None and stat.S_ISREG(st.st_mode):
            self.mode = stat.S_IMODE(st.st_mode)  # overwriting keeps the file's mode
        parent, name = os.path.split(self.path)
        os.makedirs(parent, exist_ok=True)
        self.temp = os.path.join(parent, f".{name}.{os.urandom(4).hex()}.kiln-tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self.fd = os.open(self.temp, flags, 0o666)

    def _commit(self):
        os.close(self.fd)
        self.fd = None
        if self.mode is not None:
            os.chmod(self.temp, self.mode)
        os.replace(self.temp, self.path)
        self.temp = None
        self.send("ok", size=self.size)

    def _fail(self, exc):
        """Answer now; later chunks of this write are ignored (the final one retires it)."""
        self.failed = True
        self._discard()
        self.send("error", code=errno_name(exc), message=describe_os_error(exc))

    def _discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except OSError:
                pass
            self.temp = None


class FileRead(Request):
    """`fs_read`: `data` frames of FILE_CHUNK bytes, produced as fast as the client takes them."""

    def __init__(self, conn, rid, fd):
        super().__init__(conn, rid)
        self.fd = fd
        self.size = 0

    def resume(self):
        while self.fd is not None:
            if self.conn.congested:
                self.conn.wait_drain(self)
                return
            try:
                data = os.read(self.fd, FILE_CHUNK)
            except OSError as exc:
                self.cancel()
                self.send("error", code=errno_name(exc), message=describe_os_error(exc))
                self.retire()
                return
            if not data:
                self.cancel()
                self.send("ok", size=self.size)
                self.retire()
                return
            self.size += len(data)
            self.send("data", data)

    def cancel(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class EntryStream(Request):
    """`fs_list` / `fs_walk`: entries in `entries` frames of ENTRY_BATCH bytes, the rest in `ok`."""

    def __init__(self, conn, rid, entries):
        super().__init__(conn, rid)
        self.entries = entries  # iterator of FileEntry dicts

    def resume(self):
        while self.entries is not None:
            if self.conn.congested:
                self.conn.wait_drain(self)
                return
            batch, size = [], 0
            for entry in self.entries:
                batch.append(entry)
                size += encoded_size(entry)
                if size >= ENTRY_BATCH:
                    self.send("entries", entries=batch)
                    break
            else:
                self.entries = None
                self.send("ok", entries=batch)
                self.retire()

    def cancel(self):
        self.entries = None


# --- code contexts --------------------------------------------------------------------------


class Kernel:
    """One kernel process and its pipes (PROTOCOL.md, "Agent <-> kernel")."""

    def __init__(self, context, argv, env, cwd, restoring):
        self.context = context
        self.loop = context.agent.loop
        self.ready = False
        self.restoring = restoring  # loading a saved state, until `ready`
        self.used = restoring  # has been sent code or state, so it may hold state
        self.exited = False
        self.startup_output = bytearray()  # quoted if the kernel dies before `ready`
        self.lines = bytearray()
        self.skipping_line = False
        req_r, req_w = os.pipe()
        ev_r, ev_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()

        def setup():
            # Runs in the child. The agent's own fds 3 and 4 (Loop's selector and wakeup
            # socket) stay open for its whole life, so none of these pipes is numbered 3 or
            # 4 and the two dup2s cannot overwrite one another.
            os.dup2(req_r, 3)
            os.dup2(ev_w, 4)

        try:
            self.proc = self.loop.spawn(
                argv,
                self._on_exit,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                cwd=cwd,
                env=env,
                pass_fds=(3, 4),
                setup=setup,
            )
        except BaseException:
            close_fds(req_w, ev_r, out_r, err_r)
            raise
        finally:
            close_fds(req_r, ev_w, out_w, err_w)
        self.requests = PipeWriter(self.loop, req_w)
        self.readers = [
            PipeReader(self.loop, ev_r, "events", self),
            PipeReader(self.loop, out_r, "stdout", self),
            PipeReader(self.loop, err_r, "stderr", self),
        ]
        self.start_timer = self.loop.call_later(KERNEL_START_TIMEOUT, self.kill)

    def run(self, run):
        self.used = True
        message = {"type": "run", "id": run.seq, "code": run.code, "language": self.context.language}
        self.requests.write(json.dumps(message).encode() + b"\n")
        self.resume_readers()

    def save(self, state_save):
        message = {"type": "save", "id": state_save.seq, "path": state_save.temp}
        self.requests.write(json.dumps(message).encode() + b"\n")

    def resume_readers(self):
        """The request being served changed: stop waiting on the previous one's connection."""
        for reader in self.readers:
            reader.resume()

    def drain_output(self):
        for reader in self.readers[1:]:
            reader.drain()

    def interrupt(self):
        if not self.exited:
            os.kill(self.proc.pid, signal.SIGINT)

    def kill(self):
        if not self.exited:
            kill_group(self.proc.pid)

    def feeding(self):
        run = self.context.current
        return run.conn if run is not None and self.context.kernel is self else None

    def pipe_data(self, tag, data):
        if tag == "events":
            self._parse_events(data)
        elif self.context.kernel is self and self.context.current is not None:
            self.context.current.output(tag, data)
        elif not self.ready:
            self.startup_output = (self.startup_output + data)[-STARTUP_TAIL_MAX:]

    def pipe_eof(self, tag):
        if tag == "events":
            self.kill()  # it can no longer answer; the exit handler settles the rest

    def _parse_events(self, data):
        lines = self.lines
        lines += data
        start = 0
        while True:
            end = lines.find(b"\n", start)
            if end < 0:
                break
            line = bytes(lines[start:end])
            start = end + 1
            if self.skipping_line:
                self.skipping_line = False
            else:
                self._message(line)
        del lines[:start]
        if len(lines) > KERNEL_LINE_MAX:
            log(f"{self.context.label}: dropping a kernel message over {KERNEL_LINE_MAX} bytes")
            lines.clear()
            self.skipping_line = True
            if self.context.current is not None:
                self.context.current.truncated = True

    def _message(self, line):
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            log(f"{self.context.label}: ignoring a malformed kernel message")
            return
        if isinstance(message, dict):
            self.context.kernel_message(self, message)

    def _on_exit(self, returncode):
        self.exited = True
        self.start_timer.cancel()
        for reader in self.readers:  # events first: a `done` in there drains the others
            reader.drain()
            reader.close()
        self.requests.close()
        self.context.kernel_exited(self, returncode)


class Context:
    """A (language, name) code context: its queue of run_code requests and its kernel."""

    def __init__(self, agent, language, name):
        self.agent, self.language, self.name = agent, language, name
        self.label = f"{language} context {name!r}"
        self.queue = collections.deque()
        self.current = None  # the RunCode the kernel is running
        self.saving = None  # the StateSave the kernel is busy with (runs wait for it)
        self.kernel = None

    @property
    def holds_state(self):
        return self.kernel is not None and self.kernel.used

    @property
    def busy(self):
        """Running, or about to run, code; or saving or restoring state."""
        restoring = self.kernel is not None and self.kernel.restoring
        return bool(self.current or self.queue or self.saving or restoring)

    def submit(self, run):
        self.queue.append(run)
        self._advance()

    def start(self, state_file=None):
        """Start a kernel process: a fresh one, or one that first loads a saved state_file."""
        argv = self.agent.kernel_argv(self.language)
        script = argv[-1]
        if state_file is not None:
            argv.append(state_file)
        try:
            if not os.path.isfile(script):
                raise FileNotFoundError(errno.ENOENT, "kernel is not installed", script)
            env, cwd = self.agent.sandbox_env(), self.agent.kernel_cwd()
            self.kernel = Kernel(self, argv, env, cwd, restoring=state_file is not None)
        except OSError as exc:
            self.kernel = None
            self._fail_queue(f"could not start the {self.label}: {describe_os_error(exc)}")

    def refresh(self):
        """Restart a kernel that never ran code, so it sees a newly loaded environment."""
        if self.kernel is not None and not self.kernel.used and self.current is None:
            stale, self.kernel = self.kernel, None
            stale.kill()
            self.start()

    def save(self, path, on_saved):
        """Have the idle kernel save its state to path; on_saved(report) once, within SAVE_TIMEOUT."""
        self.saving = StateSave(self, path, on_saved)
        self.kernel.save(self.saving)

    def interrupt(self, run, reason):
        """Stop `run` ("timeout" or "killed"): SIGINT, then SIGKILL and restart if it hangs on."""
        if run in self.queue:
            self.queue.remove(run)
            error = {"name": "Cancelled", "value": "cancelled before it started", "traceback": ""}
            run.finish("killed", error)
        elif run is self.current and run.reason is None:
            run.reason = reason
            self.kernel.interrupt()
            run.kill_timer = self.agent.loop.call_later(INTERRUPT_GRACE, lambda: self._kill_stuck(run))

    def kernel_message(self, kernel, message):
        if kernel is not self.kernel:
            return
        kind = message.get("type")
        current = self.current
        is_current = current is not None and message.get("id") == current.seq
        if kind == "ready" and not kernel.ready:
            kernel.ready = True
            kernel.start_timer.cancel()
            kernel.startup_output.clear()
            if kernel.restoring:
                kernel.restoring = False
                self.agent.restored(self.name, clean_state_report(message, "restored"))
            self._advance()
        elif kind == "saved" and self.saving is not None and message.get("id") == self.saving.seq:
            save, self.saving = self.saving, None
            save.answered(message)
            self.agent.touch()
            self._advance()
        elif kind == "result" and is_current and isinstance(message.get("result"), dict):
            current.result(message["result"])
        elif kind == "done" and is_current:
            kernel.drain_output()
            self.current = None
            current.kernel_done(message.get("error"))
            self._advance()

    def kernel_exited(self, kernel, returncode):
        if kernel is not self.kernel:
            return
        self.kernel = None
        what = f"the {self.label} exited ({describe_returncode(returncode)})"
        if kernel.restoring:
            self.agent.restored(self.name, {"restored": [], "failed": [], "error": f"{what} while restoring"})
        if self.saving is not None:
            save, self.saving = self.saving, None
            save.abandon(f"{what} while saving; its state was lost")
            self.agent.touch()
        run, self.current = self.current, None
        if run is not None:
            run.crashed(returncode)
            self.start()  # warm again for whatever comes next
        elif not kernel.ready:
            output = kernel.startup_output.decode(errors="replace").strip()
            self._fail_queue(
                f"the {self.label} exited before it was ready ({describe_returncode(returncode)})"
                + (f":\n{output}" if output else "")
            )
        else:
            self._advance()  # it died idle: requests already waiting get a new kernel

    def _advance(self):
        """Start the kernel if there is none, or hand it the next request once it is ready."""
        if self.current is not None or self.saving is not None or not self.queue:
            return
        if self.kernel is None:
            self.start()
        elif self.kernel.ready and not self.kernel.exited:
            self.current = self.queue.popleft()
            self.current.begin(self.kernel)

    def _kill_stuck(self, run):
        if run is not self.current:
            return
        stuck, self.kernel, self.current = self.kernel, None, None
        stuck.kill()
        run.finish(run.reason, run.interrupt_error(None, state_kept=False), restarted=True)
        self.start()

    def _fail_queue(self, message):
        while self.queue:
            error = {"name": "ContextStartFailed", "value": message, "traceback": ""}
            self.queue.popleft().finish("error", error)


def describe_returncode(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


RESULT_TEXT_KEYS = ("text", "html", "markdown", "png", "jpeg", "svg")


def clean_result(raw):
    """The known representations of a kernel result, each checked, as PROTOCOL.md lists them."""
    result = {key: raw[key] for key in RESULT_TEXT_KEYS if isinstance(raw.get(key), str)}
    if raw.get("json") is not None:
        try:
            json.dumps(raw["json"], allow_nan=False)
            result["json"] = raw["json"]
        except (ValueError, RecursionError):
            pass
    result["isMainResult"] = raw.get("isMainResult") is True
    return result


def fit_result(result):
    """Drop a result's largest representations (cut text last) until its header fits a frame.

    Returns True if anything was dropped."""
    budget = MAX_HEADER - 256  # room for type, id and the JSON around `result`
    shrunk = False
    while encoded_size(result) > budget:
        shrunk = True
        droppable = [key for key in result if key not in ("text", "isMainResult")]
        if droppable:
            del result[max(droppable, key=lambda key: encoded_size(result[key]))]
        else:
            text = result.get("text", "")
            result["text"] = text[: len(text) // 2] + "\n[truncated]"
    return shrunk


def clean_error(error):
    """A kernel's error object as {name, value, traceback} strings of bounded size, or None."""
    if not isinstance(error, dict):
        return None
    traceback = error.get("traceback", "")
    if isinstance(traceback, list):
        traceback = "\n".join(map(str, traceback))
    return {
        "name": clip(str(error.get("name") or "Error"), ERROR_VALUE_MAX),
        "value": clip(str(error.get("value", "")), ERROR_VALUE_MAX),
        "traceback": clip_tail(str(traceback), ERROR_TRACEBACK_MAX),
    }


class RunCode(OutputRequest):
    """`run_code`: one request queued on, then run by, a Context."""

    sequence = 0  # kernel-side ids: unique across connections, so stale answers never match

    def __init__(self, agent, conn, rid, context, code, timeout_ms, cap):
        super().__init__(conn, rid, cap)
        RunCode.sequence += 1
        self.seq = RunCode.sequence
        self.agent, self.context, self.code, self.timeout_ms = agent, context, code, timeout_ms
        self.reason = None  # "timeout" or "killed" once the agent interrupted it
        self.started = None
        self.oom_before = None
        self.timer = None
        self.kill_timer = None

    def begin(self, kernel):
        self.started = time.monotonic()
        self.oom_before = self.agent.oom_kills()
        if self.timeout_ms:
            self.timer = self.agent.loop.call_later(
                self.timeout_ms / 1000, lambda: self.context.interrupt(self, "timeout")
            )
        kernel.run(self)

    def cancel(self):
        self.context.interrupt(self, "killed")

    def result(self, raw):
        result = clean_result(raw)
        if fit_result(result):
            self.truncated = True
        self.send("result", result=result)

    def kernel_done(self, error):
        error = clean_error(error)
        if self.reason:
            self.finish(self.reason, self.interrupt_error(error, state_kept=True))
        else:
            self.finish("error" if error else "ok", error)

    def crashed(self, returncode):
        if self.reason:
            status = self.reason
        elif returncode == -signal.SIGKILL and self.agent.oom_rose_since(self.oom_before):
            status = "oom"
        else:
            status = "error"
        value = f"the {self.context.label} died ({describe_returncode(returncode)}); its state was lost"
        self.finish(status, {"name": "ContextCrashed", "value": value, "traceback": ""}, restarted=True)

    def interrupt_error(self, kernel_error, state_kept):
        if self.reason == "timeout":
            name, what = "TimeoutError", f"execution exceeded {self.timeout_ms:g} ms"
        else:
            name, what = "Cancelled", "execution was cancelled"
        if state_kept:
            value = f"{what}; it was interrupted and the context state is kept"
        else:
            value = f"{what} and did not stop when interrupted; the context was restarted and its state lost"
        return {"name": name, "value": value, "traceback": kernel_error["traceback"] if kernel_error else ""}

    def finish(self, status, error, restarted=False):
        for timer in (self.timer, self.kill_timer):
            if timer is not None:
                timer.cancel()
        fields = {
            "status": status,
            "truncated": self.truncated,
            "durationMs": round((time.monotonic() - self.started) * 1000) if self.started else 0,
            "contextRestarted": restarted,
        }
        if error is not None:
            fields["error"] = error
        self.send("done", **fields)
        self.retire()


# --- interpreter state ----------------------------------------------------------------------

STATE_SUFFIX = ".pkl"


def state_file_name(context):
    """`<context>.pkl` for a name of ASCII letters, digits, '_', '-' and '.'; any other name
    (even an empty one) becomes `~<its UTF-8 in hex>.pkl`."""
    if context.isascii() and context.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return context + STATE_SUFFIX
    return "~" + context.encode("utf-8", "surrogatepass").hex() + STATE_SUFFIX


def state_file_context(file_name):
    """The context whose state_file_name() is file_name; ValueError if there is none."""
    stem = file_name[: -len(STATE_SUFFIX)]
    context = bytes.fromhex(stem[1:]).decode("utf-8", "surrogatepass") if stem[:1] == "~" else stem
    if state_file_name(context) != file_name:
        raise ValueError(f"not a state file name: {file_name!r}")
    return context


def clean_state_report(message, key):
    """{key: [names], failed: [{name, reason}], error?} from a kernel's `saved` or `ready`."""
    names = message.get(key)
    failed = message.get("failed")
    report = {
        key: [name for name in names if isinstance(name, str)] if isinstance(names, list) else [],
        "failed": [
            {"name": str(item.get("name")), "reason": clip(str(item.get("reason", "")), REASON_MAX)}
            for item in (failed if isinstance(failed, list) else [])
            if isinstance(item, dict)
        ],
    }
    if message.get("error") is not None:
        report["error"] = clip(str(message["error"]), REASON_MAX)
    return report


def discard(path):
    """Remove a temp file if it is there; nothing to be done if that fails."""
    try:
        os.unlink(path)
    except OSError:
        pass


class StateSave:
    """One `save` a Python kernel is busy with for snapshot_prepare.

    The kernel writes a temp file, renamed into place only if the answer comes in time: a
    snapshot never carries a file the reply did not report as saved."""

    sequence = 0  # kernel-side ids, like RunCode's

    def __init__(self, context, path, on_saved):
        StateSave.sequence += 1
        self.seq = StateSave.sequence
        self.path, self.temp = path, path + ".tmp"
        self.on_saved = on_saved  # None once reported
        self.timer = context.agent.loop.call_later(SAVE_TIMEOUT, self._expire)

    def answered(self, message):
        self.timer.cancel()
        if self.on_saved is None:  # too late: already reported failed
            discard(self.temp)
            return
        report = clean_state_report(message, "saved")
        try:
            if "error" in report:
                discard(self.temp)
            else:
                os.replace(self.temp, self.path)
        except OSError as exc:
            report = {"saved": [], "failed": report["failed"], "error": describe_os_error(exc)}
        self._report(report)

    def abandon(self, error):
        self.timer.cancel()
        discard(self.temp)
        self._report({"saved": [], "failed": [], "error": error})

    def _expire(self):
        # The kernel keeps the context busy until it answers (or dies); the reply does not wait.
        discard(self.temp)
        self._report({"saved": [], "failed": [], "error": f"not saved within {SAVE_TIMEOUT:g} s"})

    def _report(self, report):
        on_saved, self.on_saved = self.on_saved, None
        if on_saved is not None:
            on_saved(report)


class SnapshotPrepare:
    """`snapshot_prepare`: one `ok` once every Python context asked to save has answered."""

    def __init__(self, conn, rid):
        self.conn, self.id = conn, rid
        self.contexts = {}
        self.waiting = 0

    def skip_busy(self, context):
        self.contexts[context.name] = {"saved": [], "failed": [], "busy": True}

    def save(self, context, path):
        def on_saved(report):
            self.contexts[context.name] = report
            self.waiting -= 1
            self.reply_when_done()

        self.waiting += 1
        context.save(path, on_saved)

    def reply_when_done(self):
        if not self.waiting:
            self.conn.reply(self.id, "ok", contexts=self.contexts)


# --- files ----------------------------------------------------------------------------------


def iso_time(ns):
    ms = ns // 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def file_entry(path, st):
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "directory"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    else:
        kind = "other"
    shown = path.rstrip("/") or "/"
    return {
        "name": os.path.basename(shown) or shown,
        "path": shown,
        "type": kind,
        "size": st.st_size,
        "mode": stat.S_IMODE(mode),
        "modifiedAt": iso_time(st.st_mtime_ns),
    }


def scan_sorted(path):
    """[(child path, lstat)] for path's entries, sorted by name; entries that vanish are skipped."""
    with os.scandir(path) as entries:
        entries = sorted(entries, key=lambda entry: entry.name)
    children = []
    for entry in entries:
        try:
            children.append((entry.path, entry.stat(follow_symlinks=False)))
        except FileNotFoundError:
            pass
    return children


def list_entries(children):
    return (file_entry(path, st) for path, st in children)


def walk_entries(children):
    """FileEntries for everything below a directory, depth first, never following links."""
    stack = [iter(children)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, st = item
        yield file_entry(path, st)
        if stat.S_ISDIR(st.st_mode):
            try:
                stack.append(iter(scan_sorted(path)))
            except OSError:
                pass  # an unreadable directory is listed, its contents are not


def open_regular(path):
    # O_NONBLOCK: opening a FIFO must not hang the agent.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise OSError(code, "not a regular file" if code == errno.EINVAL else os.strerror(code), path)
    return fd


def remove_path(path, recursive):
    st = os.lstat(path)  # a symlink is removed itself, never followed
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
    elif recursive:
        import shutil

        shutil.rmtree(path)
    else:
        os.rmdir(path)


# --- the agent ------------------------------------------------------------------------------


class Config:
    def __init__(self, environ):
        here = os.path.dirname(os.path.abspath(__file__))
        self.socket_path = environ.get("KILN_AGENT_SOCKET", "/run/kiln/agent.sock")
        self.env_file = environ.get("KILN_ENV_FILE", "/etc/kiln/env.json")
        self.agent_file = environ.get("KILN_AGENT_CONFIG", "/etc/kiln/agent.json")
        home_state = os.path.join(os.path.expanduser("~"), ".kiln", "state")
        self.state_dir = environ.get("KILN_STATE_DIR", home_state)
        self.runtime_dir = environ.get("KILN_RUNTIME_DIR", here)
        self.workdir = environ.get("KILN_WORKDIR", "/workspace")


class Agent:
    def __init__(self, config):
        self.config = config
        self.loop = Loop()
        self.listener = None
        self.connections = set()
        self.contexts = {}
        self.base_env = dict(os.environ)
        self.env_overlay = {}
        self.oom_file = next((path for path in OOM_COUNTER_FILES if os.path.exists(path)), None)
        self.last_frame = time.monotonic()
        self.idle_ms = 0  # time between the frame being handled and the one before it
        self.active_at = self.last_frame  # last frame received or work ended: auto-stop's clock
        self.auto_stop_ms = None
        self.auto_stop_timer = None
        self.restores = {}  # Python context name -> what restoring its saved state brought back
        self.state_reports = []  # (conn, rid) of state_report requests waiting for restores
        self.handlers = {
            name: getattr(self, "req_" + name)
            for name in (
                "hello", "ping", "exec", "stdin", "stdin_end", "cancel", "run_code",
                "fs_write", "fs_read", "fs_stat", "fs_list", "fs_walk", "fs_mkdir",
                "fs_remove", "reload_env", "set_env", "configure", "snapshot_prepare",
                "state_report",
            )
        }  # fmt: skip

    def serve(self):
        try:
            self.env_overlay = self.read_env_file()
        except (OSError, ValueError) as exc:
            log(f"ignoring {self.config.env_file}: {exc}")
        try:
            self.set_auto_stop(self.read_agent_file())
        except (OSError, ValueError, ProtocolError) as exc:
            log(f"ignoring {self.config.agent_file}: {exc}")
        # Contexts with a saved state (from a snapshot) start now, so state_report can tell.
        saved = self.take_saved_states()
        for name in sorted({"default", *saved}):
            self.context("python", name).start(saved.get(name))
        self.listen()
        self.loop.run()

    def shutdown(self):
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
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
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
        if target is not None and target.cancellable:
            target.cancel()

    def req_run_code(self, conn, rid, header, body):
        language = field(header, "language", is_language)
        name = field(header, "context", is_str, "default")
        code = field(header, "code", is_str)
        timeout_ms = field(header, "timeoutMs", is_count, 0)
        cap = int(field(header, "maxOutputBytes", is_count, sys.maxsize))
        context = self.context(language, name)
        run = RunCode(self, conn, rid, context, code, timeout_ms, cap)
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
        read = FileRead(conn, rid, open_regular(field(header, "path", is_path)))
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
        conn.reply(rid, "ok")

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


def main():
    agent = Agent(Config(os.environ))

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        agent.serve()
    except KeyboardInterrupt:
        pass
    finally:
        agent.shutdown()


if __name__ == "__main__":
    main()
