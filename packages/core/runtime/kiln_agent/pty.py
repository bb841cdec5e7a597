"""Terminals: PTY sessions that outlive the connection that opened them.

A session is a program (a login shell by default) on the slave side of a pseudo-terminal, in
its own session with the terminal as its controlling tty. Its output goes into a ring
(scrollback, PTY_SCROLLBACK bytes) that any number of `pty_attach` readers follow; the master
is always read, so the program never waits for a reader. Ended sessions are remembered
(EXITED_KEPT) so a late reader still gets the scrollback and the exit code.
"""

import errno
import fcntl
import os
import signal
import struct
import termios

from .limits import EXIT_DRAIN_GRACE, EXITED_KEPT, MAX_TERMINALS, PTY_INPUT_MAX, PTY_SCROLLBACK
from .pipes import PipeReader, PipeWriter
from .streams import Follower, Ring, Waiter, ended, exit_code_of
from .util import close_fds, kill_group, log
from .validate import ProtocolError, field, is_argv, is_count, is_env, is_path, is_str

DEFAULT_TERM = "xterm-256color"
MAX_DIMENSION = 10_000


def is_dimension(v):
    return is_count(v) and 1 <= v <= MAX_DIMENSION and int(v) == v


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(rows), int(cols), 0, 0))


def take_terminal():
    """preexec: the child is a session leader already (setsid); make fd 0 its controlling tty."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtySession:
    def __init__(self, agent, pty_id, argv, cwd, env, cols, rows):
        self.agent, self.loop, self.id = agent, agent.loop, pty_id
        self.argv = argv
        self.cols, self.rows = cols, rows
        self.ring = Ring(PTY_SCROLLBACK)
        self.followers = set()
        self.waiters = set()
        self.ended = False
        self.exit_code = None
        self.reaped = False
        self.drain_timer = None
        master, slave = os.openpty()
        try:
            set_size(master, cols, rows)
            self.proc = self.loop.spawn(
                argv,
                self._on_exit,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                setup=take_terminal,
            )
        except BaseException:
            close_fds(master, slave)
            raise
        os.close(slave)
        self.master = master
        # Reader and writer watch separate descriptors (the selector keys on the fd number).
        self.writer = PipeWriter(self.loop, os.dup(master))
        self.reader = PipeReader(self.loop, master, "data", self)

    @property
    def pid(self):
        return self.proc.pid

    def describe(self):
        info = {"ptyId": self.id, "pid": self.pid, "running": not self.ended, "cols": self.cols, "rows": self.rows}
        if self.ended:
            info["exitCode"] = self.exit_code
        return info

    # PipeReader's owner: never paused for congestion (feeding() is None)

    def feeding(self):
        return None

    def pipe_data(self, tag, data):
        self.ring.append(data)
        for follower in list(self.followers):
            follower.pump()

    def pipe_eof(self, tag):
        self._end_if_done()

    # input, size, signals

    def write(self, data):
        if self.ended or self.writer.fd is None:
            return
        if len(self.writer.pending) + len(data) > PTY_INPUT_MAX:
            log(f"pty {self.id}: input dropped, the program is not reading it")
            return
        self.writer.write(data)

    def resize(self, cols, rows):
        if self.ended:
            return
        self.cols, self.rows = cols, rows
        set_size(self.master, cols, rows)  # the kernel sends SIGWINCH to the foreground group

    def signal(self, signum):
        """Signal the program's group and the terminal's foreground group (a job it started)."""
        if self.reaped:
            return
        groups = {self.pid}
        try:
            groups.add(os.tcgetpgrp(self.master))
        except OSError:
            pass
        for group in groups:
            try:
                os.killpg(group, signum)
            except (ProcessLookupError, PermissionError):
                pass

    # ending

    def _on_exit(self, returncode):
        # The loop has SIGKILLed the program's group; jobs in other groups got SIGHUP from the
        # kernel. Whatever still holds the terminal open gets EXIT_DRAIN_GRACE to let go.
        self.reaped = True
        self.exit_code = exit_code_of(returncode)
        self.writer.close()
        if self.reader.open:
            self.drain_timer = self.loop.call_later(EXIT_DRAIN_GRACE, self._stop_draining)
        self._end_if_done()

    def _stop_draining(self):
        try:
            kill_group(os.tcgetpgrp(self.master))
        except OSError:
            pass
        self.reader.drain()
        self.reader.close()
        self._end_if_done()

    def _end_if_done(self):
        if self.ended or not self.reaped or self.reader.open:
            return
        self.ended = True
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        self.agent.ptys.ended(self)
        ended(self)

    def finish(self, follower):
        return "exit", {"exitCode": self.exit_code}


class Ptys:
    """The agent's PTY sessions and the `pty_*` requests."""

    def __init__(self, agent):
        self.agent = agent
        self.sessions = {}
        self.exited = []  # ids of ended sessions, oldest first

    def handlers(self):
        return {
            "pty_create": self.req_pty_create,
            "pty_attach": self.req_pty_attach,
            "pty_input": self.req_pty_input,
            "pty_resize": self.req_pty_resize,
            "pty_kill": self.req_pty_kill,
            "pty_wait": self.req_pty_wait,
            "pty_list": self.req_pty_list,
        }

    def running(self):
        return [s for s in self.sessions.values() if not s.reaped]

    def ended(self, session):
        self.exited.append(session.id)
        while len(self.exited) > EXITED_KEPT:
            self.sessions.pop(self.exited.pop(0), None)

    def session(self, header, name="ptyId"):
        pty_id = field(header, name, is_str)
        session = self.sessions.get(pty_id)
        if session is None:
            raise FileNotFoundError(2, "no such terminal", pty_id)
        return session

    def req_pty_create(self, conn, rid, header, body):
        cols = field(header, "cols", is_dimension)
        rows = field(header, "rows", is_dimension)
        argv = field(header, "argv", is_argv, None) or self.default_shell()
        cwd = field(header, "cwd", is_path, self.agent.config.workdir)
        extra = {"TERM": DEFAULT_TERM, **field(header, "env", is_env, {})}
        if len(self.running()) >= MAX_TERMINALS:  # their scrollback is the agent's memory
            raise BlockingIOError(errno.EAGAIN, f"{MAX_TERMINALS} terminals are running already: end one first")
        pty_id = "pty_" + os.urandom(8).hex()  # not `secrets`: its hmac/OpenSSL import slows every start
        session = PtySession(self.agent, pty_id, argv, cwd, self.agent.sandbox_env(extra), cols, rows)
        self.sessions[pty_id] = session
        conn.reply(rid, "ok", ptyId=pty_id, pid=session.pid)

    def default_shell(self):
        return ["/bin/bash", "-l"] if os.path.exists("/bin/bash") else ["/bin/sh", "-l"]

    def req_pty_attach(self, conn, rid, header, body):
        session = self.session(header)
        offset = field(header, "offset", is_count, 0)
        follower = Follower(conn, rid, session, {"data": session.ring}, {"data": offset}, follow=True)
        conn.active[rid] = follower
        session.followers.add(follower)
        # Where the replay starts (the oldest byte kept, if offset is older) and how far it goes.
        follower.send("attached", start=max(offset, session.ring.start), end=session.ring.end)
        follower.pump()

    def req_pty_input(self, conn, header, body):
        session = self.sessions.get(field(header, "target", is_str))
        if session is not None:
            session.write(body)

    def req_pty_resize(self, conn, rid, header, body):
        session = self.session(header)
        session.resize(field(header, "cols", is_dimension), field(header, "rows", is_dimension))
        conn.reply(rid, "ok")

    def req_pty_kill(self, conn, rid, header, body):
        session = self.session(header)
        name = field(header, "signal", is_str, "SIGKILL")
        session.signal(signal_number(name))
        conn.reply(rid, "ok")

    def req_pty_wait(self, conn, rid, header, body):
        waiter = Waiter(conn, rid, self.session(header))
        if not waiter.source.ended:
            conn.active[rid] = waiter

    def req_pty_list(self, conn, rid, header, body):
        conn.reply(rid, "ok", sessions=[s.describe() for s in self.sessions.values()])


def signal_number(name):
    """A signal by name ("SIGTERM", "TERM") or number; EPROTO for anything else."""
    if isinstance(name, str) and name.isdigit():
        name = int(name)
    if isinstance(name, int):
        try:
            return signal.Signals(name)
        except ValueError:
            raise ProtocolError(f"unknown signal {name!r}") from None
    key = name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()
    if key.startswith("SIG_") or not hasattr(signal.Signals, key):
        raise ProtocolError(f"unknown signal {name!r}")
    return signal.Signals[key]
