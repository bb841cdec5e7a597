"""One kernel process per code context and its pipes (PROTOCOL.md, "Agent <-> kernel")."""

import json
import os
import signal
import subprocess

from .limits import KERNEL_LINE_MAX, KERNEL_START_TIMEOUT, STARTUP_TAIL_MAX
from .pipes import PipeReader, PipeWriter
from .util import close_fds, kill_group, log


# How a kernel's `result` line starts (json.dumps of a dict whose first key is "type").
RESULT_PREFIX = b'{"type": "result"'


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
        message = {
            "type": "run",
            "id": run.seq,
            "code": run.code,
            "language": self.context.language,
            "maxResultBytes": run.result_room,
        }
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
        scan = len(lines)  # the bytes before hold no newline: look only at the new ones
        lines += data
        start = 0
        while True:
            end = lines.find(b"\n", scan)
            if end < 0:
                break
            scan = end + 1
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
        run = self.context.current
        if run is not None and run.result_room <= 0 and line.startswith(RESULT_PREFIX):
            run.truncated = True  # over the run's result budget: not even parsed
            return
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
