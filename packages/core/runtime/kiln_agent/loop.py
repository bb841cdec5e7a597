"""The event loop: one selector, timers and reaping of the children the agent spawns."""

import heapq
import os
import selectors
import signal
import socket
import subprocess
import time

from .privileges import become_sandbox_user
from .util import kill_group, log, log_exception, open_oom_score, raise_oom_score


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
        self.child_uid = None  # the uid children switch to before exec (privileges.py)
        self.watch(self._wakeup.fileno(), selectors.EVENT_READ, self._on_wakeup)
        # The agent's own OOM score, opened while the /proc/self files are still its own (before
        # privileges.py makes it non-dumpable): spawn() raises it around a fork so the child is
        # born with the high score, with no Python run in the child (see spawn).
        self._oom_fd, self._oom_score = open_oom_score()

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
        """Start argv in its own session and process group; on_exit(returncode) once reaped.

        The child is born with the OOM killer's highest score (1000), so the kernel picks user
        code before the agent: the agent raises its own score for the fork and sets it back
        right after (a process may go back down to the score it was started with; the agent
        never holds CAP_SYS_RESOURCE). A child cannot raise its score itself once it runs as the
        sandbox user: it is not dumpable then (the agent is not), so its /proc files are root's.
        Without a `setup` the child runs no Python before exec: CPython sets its uids itself
        (`user`), where a preexec_fn made it run Python in the forked child: 1.3-1.5 ms more
        per command (bench/agent-exec.py, bench/agent-spawn.py)."""
        raised = self._raise_oom_score()
        try:
            options = dict(
                stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env, pass_fds=pass_fds, start_new_session=True
            )
            if setup is None and raised:
                proc = subprocess.Popen(argv, user=self.child_uid, **options)
            else:
                proc = subprocess.Popen(argv, preexec_fn=self._preexec(setup), **options)
        finally:
            if raised:
                self._restore_oom_score()
        self._children[proc.pid] = (proc, on_exit)
        return proc

    def _preexec(self, setup):
        child_uid = self.child_uid

        def preexec():
            if child_uid is not None:
                become_sandbox_user(child_uid)
            raise_oom_score()  # where the agent could not raise its own (its /proc file unreadable)
            if setup is not None:
                setup()

        return preexec

    def _raise_oom_score(self):
        if self._oom_fd is None:
            return False
        try:
            os.write(self._oom_fd, b"1000")
            return True
        except OSError:
            return False

    def _restore_oom_score(self):
        try:
            os.write(self._oom_fd, self._oom_score)
        except OSError as exc:
            log(f"could not set the agent's OOM score back to {self._oom_score.decode()}: {exc}")

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
