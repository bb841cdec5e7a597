"""`exec`: one command in its own process group."""

import os
import signal
import subprocess
import time

from .limits import EXIT_DRAIN_GRACE
from .pipes import PipeReader, PipeWriter
from .request import OutputRequest
from .util import close_fds, kill_group


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
