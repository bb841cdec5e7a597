"""Background processes: started by one request, living on after every connection closes.

Each runs in its own process group with stdin /dev/null; stdout and stderr go into rings
(PROCESS_LOG_MAX bytes each) that `proc_logs` readers get, following them with `follow`. The
pipes are always read, so a process never waits for a reader. When the agent shuts down
(sandbox stop, auto-stop) they get SIGTERM and TERM_GRACE seconds before SIGKILL (main.py).
"""

import errno
import os
import shlex
import subprocess
import time

from .limits import EXIT_DRAIN_GRACE, EXITED_KEPT, MAX_PROCESSES, PROCESS_LOG_MAX, TERM_GRACE
from .pipes import PipeReader
from .pty import signal_number
from .streams import Follower, Ring, Waiter, ended, exit_code_of
from .util import close_fds, kill_group
from .validate import field, is_argv, is_count, is_env, is_id, is_path, is_str

TAG_MAX = 256


def is_tag(v):
    return isinstance(v, str) and 0 < len(v) <= TAG_MAX


class BackgroundProcess:
    def __init__(self, agent, argv, cwd, env, tag):
        self.agent, self.loop = agent, agent.loop
        self.tag = tag
        self.command = argv[2] if argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3 else shlex.join(argv)
        self.rings = {"stdout": Ring(PROCESS_LOG_MAX), "stderr": Ring(PROCESS_LOG_MAX)}
        self.followers = set()
        self.waiters = set()
        self.ended = False
        self.reaped = False
        self.exit_code = None
        self.drain_timer = None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = self.loop.spawn(
                argv, self._on_exit, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, cwd=cwd, env=env
            )
        except BaseException:
            close_fds(out_r, err_r)
            raise
        finally:
            close_fds(out_w, err_w)
        self.pid = self.proc.pid
        self.pipes = [PipeReader(self.loop, out_r, "stdout", self), PipeReader(self.loop, err_r, "stderr", self)]

    def describe(self):
        info = {"pid": self.pid, "command": self.command, "running": not self.reaped}
        if self.tag is not None:
            info["tag"] = self.tag
        if self.reaped:
            info["exitCode"] = self.exit_code
        return info

    def feeding(self):
        return None  # never paused for a reader

    def pipe_data(self, tag, data):
        self.rings[tag].append(data)
        for follower in list(self.followers):
            follower.pump()

    def pipe_eof(self, tag):
        self._end_if_done()

    def signal(self, signum):
        if not self.reaped:  # once reaped, the pid may belong to someone else
            try:
                os.killpg(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def _on_exit(self, returncode):
        self.reaped = True
        self.exit_code = exit_code_of(returncode)
        if any(pipe.open for pipe in self.pipes):
            self.drain_timer = self.loop.call_later(EXIT_DRAIN_GRACE, self._stop_draining)
        self._end_if_done()

    def _stop_draining(self):
        for pipe in self.pipes:
            pipe.drain()
            pipe.close()
        self._end_if_done()

    def _end_if_done(self):
        if self.ended or not self.reaped or any(pipe.open for pipe in self.pipes):
            return
        self.ended = True
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        self.agent.processes.ended(self)
        ended(self)

    def finish(self, follower):
        if follower.follow:
            return "exit", {"exitCode": self.exit_code}
        fields = {"running": not self.reaped}
        if self.reaped:
            fields["exitCode"] = self.exit_code
        return "ok", fields


class Processes:
    """The agent's background processes and the `proc_*` requests."""

    def __init__(self, agent):
        self.agent = agent
        self.by_pid = {}
        self.exited = []

    def handlers(self):
        return {
            "proc_start": self.req_proc_start,
            "proc_list": self.req_proc_list,
            "proc_logs": self.req_proc_logs,
            "proc_signal": self.req_proc_signal,
            "proc_wait": self.req_proc_wait,
        }

    def ended(self, process):
        self.exited.append(process.pid)
        while len(self.exited) > EXITED_KEPT:
            self.by_pid.pop(self.exited.pop(0), None)

    def process(self, header):
        pid = field(header, "pid", is_id)
        process = self.by_pid.get(pid)
        if process is None:
            raise ProcessLookupError(3, "no such background process", str(pid))
        return process

    def req_proc_start(self, conn, rid, header, body):
        argv = field(header, "argv", is_argv)
        cwd = field(header, "cwd", is_path, self.agent.config.workdir)
        env = self.agent.sandbox_env(field(header, "env", is_env, {}))
        tag = field(header, "tag", is_tag, None)
        if sum(1 for p in self.by_pid.values() if not p.reaped) >= MAX_PROCESSES:
            raise BlockingIOError(errno.EAGAIN, f"{MAX_PROCESSES} background processes are running already")
        process = BackgroundProcess(self.agent, argv, cwd, env, tag)
        # A pid reused after an earlier process ended replaces that one.
        if process.pid in self.exited:
            self.exited.remove(process.pid)
        self.by_pid[process.pid] = process
        conn.reply(rid, "ok", **{k: v for k, v in (("pid", process.pid), ("tag", tag)) if v is not None})

    def req_proc_list(self, conn, rid, header, body):
        conn.reply(rid, "ok", processes=[p.describe() for p in self.by_pid.values()])

    def req_proc_logs(self, conn, rid, header, body):
        process = self.process(header)
        follow = field(header, "follow", lambda v: isinstance(v, bool), False)
        offsets = {
            "stdout": field(header, "stdoutOffset", is_count, 0),
            "stderr": field(header, "stderrOffset", is_count, 0),
        }
        follower = Follower(conn, rid, process, process.rings, offsets, follow)
        conn.active[rid] = follower
        if follow:
            process.followers.add(follower)
        follower.pump()

    def req_proc_signal(self, conn, rid, header, body):
        process = self.process(header)
        process.signal(signal_number(field(header, "signal", is_str, "SIGTERM")))
        conn.reply(rid, "ok")

    def req_proc_wait(self, conn, rid, header, body):
        waiter = Waiter(conn, rid, self.process(header))
        if not waiter.source.ended:
            conn.active[rid] = waiter

    def terminate_all(self, sessions):
        """At shutdown: SIGTERM the processes (and SIGHUP + SIGTERM the terminals), wait up to
        TERM_GRACE for them to exit, then leave the rest to the loop's SIGKILL."""
        import signal

        pids = [p.pid for p in self.by_pid.values() if not p.reaped]
        for process in self.by_pid.values():
            process.signal(signal.SIGTERM)
        for session in sessions:
            session.signal(signal.SIGHUP)
            session.signal(signal.SIGTERM)
            pids.append(session.pid)
        deadline = time.monotonic() + TERM_GRACE
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if not exited(pid)]
            if pids:
                time.sleep(0.02)
        for pid in pids:
            kill_group(pid)


def exited(pid):
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
