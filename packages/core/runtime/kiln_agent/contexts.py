"""Code contexts: a queue of run_code requests and the kernel that runs them."""

import collections
import errno
import os

from .kernels import Kernel
from .limits import INTERRUPT_GRACE
from .state import StateSave, clean_state_report
from .util import describe_os_error, describe_returncode


class Context:
    """A (language, name) code context: its queue of run_code requests and its kernel."""

    def __init__(self, agent, language, name):
        self.agent, self.language, self.name = agent, language, name
        self.label = f"{language} context {name!r}"
        self.queue = collections.deque()
        self.current = None  # the RunCode the kernel is running
        self.saving = None  # the StateSave the kernel is busy with (runs wait for it)
        self.kernel = None
        # A kernel holding state died while idle; the next run reports contextRestarted.
        self.lost_unreported = False
        # The kernel was restarted after holding state and no cell has succeeded since: a
        # NameError then says why the names are gone.
        self.fresh_after_loss = False

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
            if message.get("truncated") is True:  # the kernel itself dropped results past the budget
                current.truncated = True
            self.current = None
            current.kernel_done(message.get("error"))
            self._advance()

    def kernel_exited(self, kernel, returncode):
        if kernel is not self.kernel:
            return
        self.kernel = None
        if kernel.used:
            self.fresh_after_loss = True
            if self.current is None:
                self.lost_unreported = True
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
        self.fresh_after_loss = True
        run.finish(run.reason, run.interrupt_error(None, state_kept=False), restarted=True)
        self.start()

    def _fail_queue(self, message):
        while self.queue:
            error = {"name": "ContextStartFailed", "value": message, "traceback": ""}
            self.queue.popleft().finish("error", error)
