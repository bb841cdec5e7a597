"""The agent's test harness: a protocol client and agents in temp dirs, driven over the real
wire protocol. Each test module starts one shared agent (start_shared / stop_shared in its
setUpModule / tearDownModule); its runtime directory holds only kernel_python.py, so the
JavaScript kernel is missing on purpose.

    python3 -m unittest discover -s packages/core/runtime/tests
"""

import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAVE_PANDAS = importlib.util.find_spec("pandas") is not None
HAVE_DILL = importlib.util.find_spec("dill") is not None  # the agent's interpreter runs the kernels
TERMINAL = ("ok", "error", "exit", "done")

# How the image starts the agent (runtime-image.ts), with this checkout's runtime dir on sys.path.
AGENT_ARGV = [
    sys.executable,
    "-I",
    "-S",
    "-c",
    f"import sys; sys.path.insert(0, {RUNTIME!r}); from kiln_agent.main import main; main()",
]
# As the runtime image starts it: also serving the client attached to its stdin/stdout.
AGENT_STDIO_ARGV = [*AGENT_ARGV[:-1], AGENT_ARGV[-1].replace("main()", "main(stdio=True)")]


class Pipes:
    """The agent's stdin/stdout, with the socket methods Client uses."""

    def __init__(self, proc):
        self.proc = proc

    def sendall(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, size):
        return self.proc.stdout.read1(size)

    def close(self):
        self.proc.stdin.close()


class Client:
    """A protocol client: frames out, frames in, grouped by request id. `path` is the agent's
    socket, or a Pipes to talk over its stdin/stdout."""

    def __init__(self, path):
        if isinstance(path, Pipes):
            self.sock = path
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
            self.sock.settimeout(20)
        self.buffer = b""
        self.next_id = 0
        self.backlog = {}  # id -> frames read while waiting for another id

    def close(self):
        self.sock.close()

    def send_raw(self, header_bytes, body=b""):
        self.sock.sendall(struct.pack(">II", len(header_bytes), len(body)) + header_bytes + body)

    def send(self, kind, body=b"", request_id=None, **fields):
        """Send a request (under a new id unless request_id is given); its id."""
        if request_id is None:
            self.next_id += 1
            request_id = self.next_id
        self.send_raw(json.dumps({"type": kind, "id": request_id, **fields}).encode(), body)
        return request_id

    def send_to(self, kind, target, body=b""):
        """stdin / stdin_end / cancel: id 0, the request they are about in `target`."""
        self.send(kind, body, request_id=0, target=target)

    def read_frame(self):
        while True:
            if len(self.buffer) >= 8:
                head_len, body_len = struct.unpack(">II", self.buffer[:8])
                end = 8 + head_len + body_len
                if len(self.buffer) >= end:
                    header = json.loads(self.buffer[8 : 8 + head_len])
                    body = self.buffer[8 + head_len : end]
                    self.buffer = self.buffer[end:]
                    return header, body
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("agent closed the connection")
            self.buffer += data

    def next_for(self, rid):
        if self.backlog.get(rid):
            return self.backlog[rid].pop(0)
        while True:
            header, body = self.read_frame()
            if header.get("id") == rid:
                return header, body
            self.backlog.setdefault(header.get("id"), []).append((header, body))

    def collect(self, rid):
        """Every frame of request rid up to and including its final reply."""
        frames = []
        while True:
            frames.append(self.next_for(rid))
            if frames[-1][0]["type"] in TERMINAL:
                return frames

    def call(self, kind, body=b"", **fields):
        return self.collect(self.send(kind, body, **fields))

    def final(self, kind, body=b"", **fields):
        return self.call(kind, body, **fields)[-1][0]

    def exec(self, command, **fields):
        """(stdout, stderr, exit header) of a shell command."""
        frames = self.call("exec", argv=["/bin/sh", "-c", command], **fields)
        return output(frames, "stdout"), output(frames, "stderr"), frames[-1][0]

    def run(self, code, context="default", **fields):
        """(stdout, results, done header) of a Python cell."""
        frames = self.call("run_code", language="python", context=context, code=code, **fields)
        results = [header["result"] for header, _ in frames if header["type"] == "result"]
        return output(frames, "stdout"), results, frames[-1][0]


def output(frames, stream):
    return b"".join(body for header, body in frames if header["type"] == stream)


def process_gone(pid, within=3.0):
    """True once pid no longer runs (missing or a zombie waiting for its reaper)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):  # vanished before or while reading
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


class AgentProcess:
    """An agent in its own temp dir: socket, workdir, env file, agent.json (written if settings
    are given), state dir (unless given), and a runtime dir holding only kernel_python.py."""

    def __init__(self, settings=None, state_dir=None, stdio=False):
        self.dir = tempfile.mkdtemp(prefix="kiln-agent-test-")
        self.workdir = os.path.join(self.dir, "work")
        self.env_file = os.path.join(self.dir, "env.json")
        self.socket = os.path.join(self.dir, "agent.sock")
        agent_file = os.path.join(self.dir, "agent.json")
        runtime = os.path.join(self.dir, "runtime")
        os.mkdir(self.workdir)
        os.mkdir(runtime)
        os.symlink(os.path.join(RUNTIME, "kernel_python.py"), os.path.join(runtime, "kernel_python.py"))
        if settings is not None:
            with open(agent_file, "w") as f:
                json.dump(settings, f)
        env = dict(
            os.environ,
            KILN_AGENT_SOCKET=self.socket,
            KILN_ENV_FILE=self.env_file,
            KILN_AGENT_CONFIG=agent_file,
            KILN_STATE_DIR=state_dir or os.path.join(self.dir, "state"),
            KILN_RUNTIME_DIR=runtime,
            KILN_WORKDIR=self.workdir,
            KILN_TEST_BASE="from-agent",
        )
        self.log = open(os.path.join(self.dir, "agent.log"), "w+")
        # stdio: "pipes" (as the engine starts it, attachable), "devnull" (started without an open
        # stdin, as another engine or a plain `docker run` would), or False (the tests' default).
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE} if stdio is True else {}
        if stdio == "devnull":
            pipes = {"stdin": subprocess.DEVNULL}
        self.proc = subprocess.Popen(
            AGENT_STDIO_ARGV if stdio else AGENT_ARGV, env=env, stderr=self.log, **pipes
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the agent did not start")
            time.sleep(0.02)

    def stop(self):
        """Stop the agent; fail if it logged an internal error."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        self.log.seek(0)
        log = self.log.read()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if "Traceback" in log:
            raise AssertionError(f"the agent logged an internal error:\n{log}")



_shared = None


def start_shared():
    global _shared
    _shared = AgentProcess()


def stop_shared():
    _shared.stop()


def agent():
    """The agent shared by the current test module."""
    return _shared


class AgentTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(agent().socket)

    def tearDown(self):
        self.client.close()

    def path(self, *parts):
        return os.path.join(agent().dir, *parts)


def agent_rss_kib():
    with open(f"/proc/{agent().proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

