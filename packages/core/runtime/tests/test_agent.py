"""Tests for the in-sandbox agent and the Python kernel, driven over the real wire protocol.

One agent runs for the whole module on a temporary socket, workdir and env file; its runtime
directory holds only kernel_python.py, so the JavaScript kernel is missing on purpose.

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


class Client:
    """A protocol client: frames out, frames in, grouped by request id."""

    def __init__(self, path):
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

    def __init__(self, settings=None, state_dir=None):
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
        self.proc = subprocess.Popen(
            [sys.executable, "-I", os.path.join(RUNTIME, "agent.py")], env=env, stderr=self.log
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
        self.log.seek(0)
        log = self.log.read()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if "Traceback" in log:
            raise AssertionError(f"the agent logged an internal error:\n{log}")


def setUpModule():
    global AGENT, TMP, WORK, ENV_FILE, SOCKET
    AGENT = AgentProcess()
    TMP, WORK, ENV_FILE, SOCKET = AGENT.dir, AGENT.workdir, AGENT.env_file, AGENT.socket


def tearDownModule():
    AGENT.stop()


class AgentTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(SOCKET)

    def tearDown(self):
        self.client.close()

    def path(self, *parts):
        return os.path.join(TMP, *parts)


class ClaimTest(unittest.TestCase):
    """The host writes env.json after the agent (and its default kernel) started."""

    def test_env_written_at_claim_reaches_the_warm_default_context(self):
        agent = AgentProcess()
        self.addCleanup(agent.stop)
        client = Client(agent.socket)
        self.addCleanup(client.close)
        with open(agent.env_file, "w") as f:
            json.dump({"CLAIMED_BY": "tenant-7"}, f)
        self.assertEqual(client.final("reload_env")["type"], "ok")
        _, results, _ = client.run("import os\nos.environ.get('CLAIMED_BY')")
        self.assertEqual(results[0]["text"], "'tenant-7'")


class FramingTest(AgentTest):
    def test_hello(self):
        reply = self.client.final("hello")
        self.assertEqual(reply["type"], "ok")
        self.assertEqual(reply["pid"], AGENT.proc.pid)
        self.assertIsInstance(reply["version"], str)

    def test_ping(self):
        reply = self.client.final("ping")
        self.assertEqual((reply["type"], reply["running"]), ("ok", 0))
        self.assertIsInstance(reply["idleMs"], int)
        rid = self.client.send("exec", argv=["sleep", "100"])
        time.sleep(0.3)
        reply = self.client.final("ping")
        self.assertEqual(reply["running"], 1)
        self.assertGreaterEqual(reply["idleMs"], 250)  # nothing came in since the exec
        self.client.send_to("cancel", rid)
        self.client.collect(rid)

    def test_malformed_json_header(self):
        self.client.send_raw(b"{not json")
        header, _ = self.client.read_frame()
        self.assertEqual((header["type"], header["code"], header["id"]), ("error", "EPROTO", None))
        self.assertEqual(self.client.final("hello")["type"], "ok")

    def test_bad_requests(self):
        for kind, fields in [
            ("no_such_request", {}),
            ("exec", {}),  # argv missing
            ("exec", {"argv": "ls"}),  # not a list
            ("fs_stat", {"path": "relative/path"}),
            ("run_code", {"language": "cobol", "code": "1"}),
        ]:
            with self.subTest(kind=kind, fields=fields):
                reply = self.client.final(kind, **fields)
                self.assertEqual((reply["type"], reply["code"]), ("error", "EPROTO"))
        self.client.send("cancel", request_id=0)  # no target: logged, never answered
        self.client.send_raw(json.dumps({"type": "hello"}).encode())  # no id
        header, _ = self.client.read_frame()
        self.assertEqual((header["code"], header["id"]), ("EPROTO", None))
        self.assertEqual(self.client.final("hello")["type"], "ok")

    def test_oversized_frame_closes_only_that_connection(self):
        self.client.sock.sendall(struct.pack(">II", 2 << 20, 0))
        with self.assertRaises((EOFError, ConnectionResetError)):
            self.client.read_frame()
        other = Client(SOCKET)
        self.assertEqual(other.final("hello")["type"], "ok")
        other.close()


class ExecTest(AgentTest):
    def test_ok(self):
        out, err, exit_ = self.client.exec("echo hello")
        self.assertEqual(out, b"hello\n")
        self.assertEqual(err, b"")
        self.assertEqual((exit_["status"], exit_["exitCode"], exit_["truncated"]), ("ok", 0, False))
        self.assertIsInstance(exit_["durationMs"], int)

    def test_error_exit_code(self):
        out, err, exit_ = self.client.exec("echo oops >&2; exit 3")
        self.assertEqual(err, b"oops\n")
        self.assertEqual((exit_["status"], exit_["exitCode"]), ("error", 3))

    def test_signal_exit_code(self):
        _, _, exit_ = self.client.exec("kill -TERM $$")
        self.assertEqual((exit_["status"], exit_["exitCode"]), ("error", 128 + signal.SIGTERM))

    def test_argv_without_shell(self):
        frames = self.client.call("exec", argv=["printf", "%s|", "a b", "c"])
        self.assertEqual(output(frames, "stdout"), b"a b|c|")

    def test_missing_program(self):
        reply = self.client.final("exec", argv=["/nonexistent/program"])
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOENT"))

    def test_stdin(self):
        rid = self.client.send("exec", argv=["cat"], stdin=True)
        self.client.send_to("stdin", rid, b"first ")
        self.client.send_to("stdin", rid, b"second")
        self.client.send_to("stdin_end", rid)
        frames = self.client.collect(rid)
        self.assertEqual(output(frames, "stdout"), b"first second")
        self.assertEqual(frames[-1][0]["status"], "ok")

    def test_stdin_is_dev_null_by_default(self):
        out, _, exit_ = self.client.exec("cat; echo done")
        self.assertEqual((out, exit_["status"]), (b"done\n", "ok"))

    def test_env_layers(self):
        with open(ENV_FILE, "w") as f:
            json.dump({"FROM_FILE": "file", "SHARED": "file"}, f)
        try:
            self.assertEqual(self.client.final("reload_env")["type"], "ok")
            out, _, _ = self.client.exec(
                'echo "$KILN_TEST_BASE $FROM_FILE $SHARED"', env={"SHARED": "request"}
            )
            self.assertEqual(out, b"from-agent file request\n")
        finally:
            os.unlink(ENV_FILE)
            self.client.final("reload_env")
        out, _, _ = self.client.exec('echo "${FROM_FILE:-unset}"')
        self.assertEqual(out, b"unset\n")

    def test_set_env_inline(self):
        try:
            self.assertEqual(self.client.final("set_env", env={"INLINE": "yes"})["type"], "ok")
            out, _, _ = self.client.exec('echo "$INLINE"')
            self.assertEqual(out, b"yes\n")
            reply = self.client.final("set_env", env={"BAD": 3})
            self.assertEqual((reply["type"], reply["code"]), ("error", "EPROTO"))
        finally:
            self.client.final("set_env", env={})
        out, _, _ = self.client.exec('echo "${INLINE:-unset}"')
        self.assertEqual(out, b"unset\n")

    def test_reload_env_rejects_invalid_file(self):
        with open(ENV_FILE, "w") as f:
            f.write("[1, 2]")
        try:
            reply = self.client.final("reload_env")
            self.assertEqual((reply["type"], reply["code"]), ("error", "EINVAL"))
        finally:
            os.unlink(ENV_FILE)

    def test_cwd(self):
        out, _, _ = self.client.exec("pwd", cwd=TMP)
        self.assertEqual(out.decode().strip(), os.path.realpath(TMP))
        out, _, _ = self.client.exec("pwd")
        self.assertEqual(out.decode().strip(), os.path.realpath(WORK))
        reply = self.client.final("exec", argv=["pwd"], cwd=self.path("missing"))
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOENT"))

    def test_timeout_ignores_sigterm_trap(self):
        started = time.monotonic()
        _, _, exit_ = self.client.exec("trap '' TERM; sleep 100", timeoutMs=500)
        elapsed = time.monotonic() - started
        self.assertEqual((exit_["status"], exit_["exitCode"]), ("timeout", 128 + signal.SIGKILL))
        self.assertLess(elapsed, 1.5)

    def test_output_cap(self):
        out, err, exit_ = self.client.exec(
            "head -c 3000000 /dev/zero; head -c 10 /dev/zero >&2", maxOutputBytes=1000
        )
        self.assertEqual(len(out), 1000)
        self.assertEqual(len(err), 10)
        self.assertEqual((exit_["status"], exit_["truncated"]), ("ok", True))

    def test_flood_keeps_agent_memory_bounded(self):
        rid = self.client.send("exec", argv=["head", "-c", "60000000", "/dev/zero"])
        time.sleep(1.0)  # the client reads nothing: the agent must stop reading the pipe
        rss_kib = agent_rss_kib()
        frames = self.client.collect(rid)
        self.assertEqual(len(output(frames, "stdout")), 60000000)
        self.assertLess(rss_kib, 60 * 1024)

    def test_background_process_killed_when_command_ends(self):
        out, _, exit_ = self.client.exec("sleep 100 & echo $!")
        self.assertEqual(exit_["status"], "ok")
        self.assertTrue(process_gone(int(out)))

    def test_escaped_process_does_not_hold_the_reply(self):
        started = time.monotonic()
        out, _, exit_ = self.client.exec("setsid sleep 3 & echo started", timeoutMs=10000)
        self.assertEqual((out, exit_["status"]), (b"started\n", "ok"))
        self.assertLess(time.monotonic() - started, 2.5)

    def test_cancel(self):
        rid = self.client.send("exec", argv=["sleep", "100"])
        time.sleep(0.1)
        self.client.send_to("cancel", rid)
        exit_ = self.client.collect(rid)[-1][0]
        self.assertEqual((exit_["status"], exit_["exitCode"]), ("killed", 128 + signal.SIGKILL))

    def test_closing_the_connection_kills_its_commands(self):
        other = Client(SOCKET)
        rid = other.send("exec", argv=["/bin/sh", "-c", "echo $$; exec sleep 100"])
        pid = int(other.next_for(rid)[1])
        other.close()
        self.assertTrue(process_gone(pid))

    def test_children_get_high_oom_score(self):
        out, _, _ = self.client.exec("cat /proc/self/oom_score_adj")
        self.assertEqual(out, b"1000\n")


def agent_rss_kib():
    with open(f"/proc/{AGENT.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


class FilesTest(AgentTest):
    def write(self, path, data, chunk=1 << 20, **fields):
        """fs_write in chunks of `chunk` bytes; the final reply."""
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        rid, offset = None, 0
        for index, piece in enumerate(pieces):
            final = index == len(pieces) - 1
            rid = self.client.send(
                "fs_write", piece, request_id=rid, path=path, offset=offset, final=final, **fields
            )  # every chunk carries the id of the first
            offset += len(piece)
        return self.client.collect(rid)[-1][0]

    def read(self, path):
        frames = self.client.call("fs_read", path=path)
        return b"".join(body for header, body in frames if header["type"] == "data"), frames

    def test_binary_round_trip(self):
        data = bytes(range(256)) * 6000  # 1.5 MB, every byte value
        path = self.path("files", "deep", "er", "blob.bin")  # parents are created
        reply = self.write(path, data, chunk=400000)
        self.assertEqual((reply["type"], reply["size"]), ("ok", len(data)))
        read, frames = self.read(path)
        self.assertEqual(read, data)
        self.assertEqual(frames[-1][0], {"type": "ok", "id": frames[-1][0]["id"], "size": len(data)})
        self.assertGreater(len(frames), 5)  # streamed in 256 KiB chunks
        self.assertEqual([n for n in os.listdir(os.path.dirname(path))], ["blob.bin"])  # no temp left

    def test_empty_file_and_mode(self):
        path = self.path("files", "script.sh")
        self.assertEqual(self.write(path, b"", mode=0o751)["type"], "ok")
        entry = self.client.final("fs_stat", path=path)["entry"]
        self.assertEqual((entry["type"], entry["size"], entry["mode"]), ("file", 0, 0o751))
        self.assertEqual(self.write(path, b"echo")["type"], "ok")  # overwriting keeps the mode
        self.assertEqual(self.client.final("fs_stat", path=path)["entry"]["mode"], 0o751)

    def test_write_errors(self):
        os.makedirs(self.path("files", "adir"), exist_ok=True)
        reply = self.write(self.path("files", "adir"), b"x")
        self.assertEqual((reply["type"], reply["code"]), ("error", "EISDIR"))
        rid = self.client.send("fs_write", b"x", path=self.path("files", "f"), offset=5, final=True)
        reply = self.client.collect(rid)[-1][0]
        self.assertEqual((reply["type"], reply["code"]), ("error", "EINVAL"))

    def test_read_errors(self):
        reply = self.client.final("fs_read", path=self.path("missing"))
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOENT"))
        reply = self.client.final("fs_read", path=TMP)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EISDIR"))
        for kind in ("fs_stat", "fs_list", "fs_walk", "fs_remove"):
            reply = self.client.final(kind, path=self.path("missing"))
            self.assertEqual((kind, reply["type"], reply["code"]), (kind, "error", "ENOENT"))

    def test_stat_list_walk(self):
        root = self.path("tree")
        self.assertEqual(self.client.final("fs_mkdir", path=os.path.join(root, "b", "c"))["type"], "ok")
        self.assertEqual(self.client.final("fs_mkdir", path=os.path.join(root, "b"))["type"], "ok")
        self.write(os.path.join(root, "a.txt"), b"12345")
        self.write(os.path.join(root, "b", "c", "d.txt"), b"")
        os.symlink(os.path.join(root, "b"), os.path.join(root, "link"))

        entry = self.client.final("fs_stat", path=os.path.join(root, "a.txt"))["entry"]
        self.assertEqual(
            {k: entry[k] for k in ("name", "path", "type", "size")},
            {"name": "a.txt", "path": os.path.join(root, "a.txt"), "type": "file", "size": 5},
        )
        self.assertRegex(entry["modifiedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        link = self.client.final("fs_stat", path=os.path.join(root, "link"))["entry"]
        self.assertEqual(link["type"], "symlink")

        entries = self.client.final("fs_list", path=root)["entries"]
        self.assertEqual(
            [(e["name"], e["type"]) for e in entries],
            [("a.txt", "file"), ("b", "directory"), ("link", "symlink")],
        )
        walked = self.client.final("fs_walk", path=root)["entries"]
        self.assertEqual(
            [e["path"][len(root) :] for e in walked],
            ["/a.txt", "/b", "/b/c", "/b/c/d.txt", "/link"],  # the link is not followed
        )

    def test_large_listing_comes_in_batches(self):
        root = self.path("many")
        os.makedirs(root)
        names = [f"file-with-a-rather-long-name-{i:05d}" for i in range(3000)]
        for name in names:
            open(os.path.join(root, name), "w").close()
        frames = self.client.call("fs_walk", path=root)
        self.assertGreater(len(frames), 1)
        self.assertEqual({header["type"] for header, _ in frames[:-1]}, {"entries"})
        entries = [e for header, _ in frames for e in header["entries"]]
        self.assertEqual([e["name"] for e in entries], names)

    def test_mkdir_over_file(self):
        self.write(self.path("files", "plain"), b"x")
        reply = self.client.final("fs_mkdir", path=self.path("files", "plain"))
        self.assertEqual((reply["type"], reply["code"]), ("error", "EEXIST"))

    def test_remove(self):
        root = self.path("rm")
        os.makedirs(os.path.join(root, "dir", "sub"))
        self.write(os.path.join(root, "dir", "sub", "f"), b"x")
        self.write(os.path.join(root, "file"), b"x")

        self.assertEqual(self.client.final("fs_remove", path=os.path.join(root, "file"))["type"], "ok")
        self.assertFalse(os.path.exists(os.path.join(root, "file")))
        reply = self.client.final("fs_remove", path=os.path.join(root, "dir"), recursive=False)
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOTEMPTY"))
        reply = self.client.final("fs_remove", path=os.path.join(root, "dir"), recursive=True)
        self.assertEqual(reply["type"], "ok")
        self.assertFalse(os.path.exists(os.path.join(root, "dir")))

    def test_remove_does_not_follow_symlinks(self):
        target = self.path("kept")
        os.makedirs(target)
        self.write(os.path.join(target, "precious"), b"x")
        link = self.path("link-to-kept")
        os.symlink(target, link)
        reply = self.client.final("fs_remove", path=link, recursive=True)
        self.assertEqual(reply["type"], "ok")
        self.assertFalse(os.path.lexists(link))
        self.assertTrue(os.path.exists(os.path.join(target, "precious")))


class RunCodeTest(AgentTest):
    def test_state_persists_and_final_expression_is_the_result(self):
        self.client.run("counter = 41")
        out, results, done = self.client.run("print('side effect')\ncounter + 1")
        self.assertEqual(out, b"side effect\n")
        self.assertEqual(results, [{"text": "42", "isMainResult": True}])
        self.assertEqual(
            {k: done[k] for k in ("status", "truncated", "contextRestarted")},
            {"status": "ok", "truncated": False, "contextRestarted": False},
        )
        self.assertNotIn("error", done)

    def test_none_and_statements_give_no_result(self):
        for code in ("None", "x = 1", "def f():\n    return 1", "print('x')"):
            with self.subTest(code=code):
                self.assertEqual(self.client.run(code)[1], [])

    def test_display(self):
        _, results, _ = self.client.run("display(1, 'two')\n3")
        self.assertEqual(
            [(r["text"], r["isMainResult"]) for r in results],
            [("1", False), ("'two'", False), ("3", True)],
        )

    def test_repr_methods(self):
        code = (
            "class Rich:\n"
            "    def __repr__(self): return 'Rich()'\n"
            "    def _repr_html_(self): return '<b>rich</b>'\n"
            "    def _repr_png_(self): return b'\\x89PNG'\n"
            "    def _repr_json_(self): return {'a': [1, 2]}\n"
            "    def _repr_markdown_(self): raise ValueError('broken')\n"
            "Rich()"
        )
        _, results, done = self.client.run(code)
        self.assertEqual(done["status"], "ok")
        self.assertEqual(
            results,
            [{"text": "Rich()", "html": "<b>rich</b>", "png": "iVBORw==", "json": {"a": [1, 2]},
              "isMainResult": True}],
        )  # fmt: skip

    def test_error_traceback_shows_the_user_code(self):
        code = "def inner():\n    return 1 / 0\n\nvalue = 'before'\ninner()"
        _, _, done = self.client.run(code)
        self.assertEqual(done["status"], "error")
        error = done["error"]
        self.assertEqual((error["name"], error["value"]), ("ZeroDivisionError", "division by zero"))
        self.assertIn("return 1 / 0", error["traceback"])
        self.assertIn("inner()", error["traceback"])
        self.assertRegex(error["traceback"], r'File "<cell-\d+>", line 2, in inner')
        self.assertNotIn("kernel_python", error["traceback"])
        self.assertEqual(self.client.run("value")[1][0]["text"], "'before'")

    def test_syntax_error(self):
        _, _, done = self.client.run("x = (1,\n")
        self.assertEqual((done["status"], done["error"]["name"]), ("error", "SyntaxError"))
        self.assertIn("<cell-", done["error"]["traceback"])

    def test_sys_exit_is_an_error_not_an_exit(self):
        _, _, done = self.client.run("import sys\nsys.exit(3)")
        self.assertEqual((done["status"], done["error"]["name"]), ("error", "SystemExit"))
        self.assertEqual(self.client.run("1 + 1")[1][0]["text"], "2")

    def test_top_level_await(self):
        _, results, done = self.client.run(
            "import asyncio\nasync def twice(x):\n    await asyncio.sleep(0.01)\n    return 2 * x\n"
            "await twice(21)"
        )
        self.assertEqual((done["status"], results[0]["text"]), ("ok", "42"))

    def test_output_streams_while_the_cell_runs(self):
        rid = self.client.send(
            "run_code", language="python", context="default",
            code="import time\nprint('early', end='')\ntime.sleep(1)\nprint('late')",
        )  # fmt: skip
        header, body = self.client.next_for(rid)
        seen = time.monotonic()
        self.assertEqual((header["type"], body), ("stdout", b"early"))
        frames = self.client.collect(rid)
        self.assertGreater(time.monotonic() - seen, 0.5)
        self.assertEqual(output(frames, "stdout"), b"late\n")

    def test_requests_to_one_context_run_in_order(self):
        first = self.client.send(
            "run_code", language="python", context="queue", code="import time\ntime.sleep(0.3)\norder = [1]"
        )
        second = self.client.send("run_code", language="python", context="queue", code="order.append(2)\norder")
        self.assertEqual(self.client.collect(first)[-1][0]["status"], "ok")
        frames = self.client.collect(second)
        self.assertEqual(frames[0][0]["result"]["text"], "[1, 2]")

    def test_contexts_are_separate(self):
        self.client.run("only_here = 1", context="separate-a")
        _, _, done = self.client.run("only_here", context="separate-b")
        self.assertEqual(done["error"]["name"], "NameError")

    def test_timeout_interrupts_and_keeps_state(self):
        self.client.run("kept = 'yes'", context="timeout-soft")
        started = time.monotonic()
        _, _, done = self.client.run("import time\ntime.sleep(30)", context="timeout-soft", timeoutMs=500)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual((done["status"], done["contextRestarted"]), ("timeout", False))
        self.assertEqual(done["error"]["name"], "TimeoutError")
        self.assertIn("time.sleep(30)", done["error"]["traceback"])
        self.assertEqual(self.client.run("kept", context="timeout-soft")[1][0]["text"], "'yes'")

    def test_timeout_of_a_cell_ignoring_interrupts_restarts_the_context(self):
        self.client.run("lost = True", context="timeout-hard")
        code = (
            "import time\n"
            "while True:\n"
            "    try:\n"
            "        time.sleep(1)\n"
            "    except KeyboardInterrupt:\n"
            "        pass\n"
        )
        started = time.monotonic()
        _, _, done = self.client.run(code, context="timeout-hard", timeoutMs=300)
        self.assertLess(time.monotonic() - started, 4.0)
        self.assertEqual((done["status"], done["contextRestarted"]), ("timeout", True))
        self.assertIn("state lost", done["error"]["value"])
        _, _, done = self.client.run("lost", context="timeout-hard")
        self.assertEqual(done["error"]["name"], "NameError")

    def test_crash_restarts_the_context(self):
        _, _, done = self.client.run("import os\nos._exit(3)", context="crash")
        self.assertEqual((done["status"], done["contextRestarted"]), ("error", True))
        self.assertEqual(done["error"]["name"], "ContextCrashed")
        self.assertIn("exit code 3", done["error"]["value"])
        _, results, done = self.client.run("'alive'", context="crash")
        self.assertEqual((done["status"], results[0]["text"]), ("ok", "'alive'"))

    def test_cancel(self):
        self.client.run("survivor = 1", context="cancel")
        rid = self.client.send("run_code", language="python", context="cancel", code="import time\ntime.sleep(30)")
        queued = self.client.send("run_code", language="python", context="cancel", code="'never'")
        time.sleep(0.3)
        self.client.send_to("cancel", queued)
        self.client.send_to("cancel", rid)
        done = self.client.collect(queued)[-1][0]
        self.assertEqual((done["status"], done["error"]["name"]), ("killed", "Cancelled"))
        done = self.client.collect(rid)[-1][0]
        self.assertEqual((done["status"], done["contextRestarted"]), ("killed", False))
        self.assertEqual(self.client.run("survivor", context="cancel")[1][0]["text"], "1")

    def test_output_cap(self):
        out, _, done = self.client.run("print('x' * 100000)", maxOutputBytes=100)
        self.assertEqual((len(out), done["truncated"]), (100, True))

    def test_control_pipes_are_not_inherited(self):
        code = (
            "import subprocess, sys\n"
            "probe = 'import os\\nfor fd in (3, 4):\\n    try: os.fstat(fd); print(fd, end=\" \")\\n"
            "    except OSError: pass'\n"
            "subprocess.run([sys.executable, '-c', probe], close_fds=False, check=True)\n"
            "print('checked')"
        )
        out, _, done = self.client.run(code)
        self.assertEqual((done["status"], out), ("ok", b"checked\n"))

    def test_cells_see_the_workdir(self):
        with open(os.path.join(WORK, "helper_module.py"), "w") as f:
            f.write("ANSWER = 42\n")
        _, results, _ = self.client.run("import os, helper_module\n(os.getcwd(), helper_module.ANSWER)")
        self.assertEqual(results[0]["text"], repr((os.path.realpath(WORK), 42)))

    def test_javascript_without_its_kernel(self):
        frames = self.client.call("run_code", language="javascript", context="default", code="1")
        done = frames[-1][0]
        self.assertEqual((done["type"], done["status"]), ("done", "error"))
        self.assertEqual(done["error"]["name"], "ContextStartFailed")

    @unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not installed")
    def test_matplotlib_figures(self):
        code = (
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 2])\n"
            "plt.show()\n"
            "plt.plot([3, 4])\n"
        )
        _, results, done = self.client.run(code)
        self.assertEqual(done["status"], "ok")
        pngs = [r for r in results if "png" in r]
        self.assertEqual(len(pngs), 2)
        self.assertTrue(pngs[0]["png"].startswith("iVBOR"))
        self.assertEqual(self.client.run("len(plt.get_fignums())")[1][0]["text"], "0")

    @unittest.skipUnless(HAVE_PANDAS, "pandas is not installed")
    def test_pandas_dataframe(self):
        _, results, _ = self.client.run("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
        self.assertIn("a", results[0]["text"])
        self.assertIn("<table", results[0]["html"])


class StateTest(unittest.TestCase):
    """snapshot_prepare saves Python contexts' variables; a new agent on the same state dir (a
    sandbox created from the snapshot) restores them."""

    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix="kiln-state-test-")
        self.addCleanup(shutil.rmtree, self.state_dir, True)
        self.python_dir = os.path.join(self.state_dir, "python")

    def start_agent(self):
        agent = AgentProcess(state_dir=self.state_dir)
        self.addCleanup(agent.stop)
        client = Client(agent.socket)
        self.addCleanup(client.close)
        return agent, client

    @unittest.skipUnless(HAVE_DILL, "dill is not installed")
    def test_save_and_restore(self):
        source_agent, source = self.start_agent()
        code = (
            "import socket\n"
            "import collections as col\n"
            "x = 1\n"
            "def f():\n    return x + 1\n"
            "class Point:\n    def __init__(self, a):\n        self.a = a\n"
            "p = Point(3)\n"
            "alias = p\n"
            "sock = socket.socket()\n"
            "gen = (i for i in range(3))\n"
            "_private = 'not saved'\n"
            "show = display\n"
        )
        self.assertEqual(source.run(code)[2]["status"], "ok")
        other, other_file = "notes/2", "~" + "notes/2".encode().hex() + ".pkl"  # any name is a file name
        source.run("y = 2", context=other)
        source.run("z = 3", context="busy")
        busy = source.send("run_code", language="python", context="busy", code="import time\ntime.sleep(30)")
        os.makedirs(self.python_dir)
        with open(os.path.join(self.python_dir, "stale.pkl"), "wb") as f:
            f.write(b"from an earlier snapshot")

        reply = source.final("snapshot_prepare")
        source.send_to("cancel", busy)
        source.collect(busy)
        self.assertEqual(reply["type"], "ok")
        default = reply["contexts"]["default"]
        self.assertEqual(default["saved"], ["socket", "col", "x", "f", "Point", "p", "alias"])
        self.assertEqual([item["name"] for item in default["failed"]], ["sock", "gen"])
        self.assertIn("socket", default["failed"][0]["reason"])
        self.assertIn("generator", default["failed"][1]["reason"])
        self.assertEqual(reply["contexts"][other], {"saved": ["y"], "failed": []})
        self.assertEqual(reply["contexts"]["busy"], {"saved": [], "failed": [], "busy": True})
        self.assertEqual(sorted(os.listdir(self.python_dir)), ["default.pkl", other_file])
        source.run("import os\nos._exit(1)", context=other)  # a restarted kernel starts empty
        self.assertEqual(source.run("y", context=other)[2]["error"]["name"], "NameError")
        self.assertEqual(sorted(os.listdir(self.python_dir)), ["default.pkl", other_file])

        _, restored = self.start_agent()  # a sandbox created from the snapshot
        report = restored.final("state_report")["restored"]
        self.assertEqual(report["default"]["restored"], default["saved"])
        self.assertEqual([item["name"] for item in report["default"]["failed"]], ["sock", "gen"])
        self.assertTrue(report["default"]["failed"][0]["reason"].startswith("could not be saved: "))
        self.assertEqual(report[other], {"restored": ["y"], "failed": []})
        check = "(x, f(), alias is p, isinstance(p, Point), p.a, col.OrderedDict.__name__, socket.AF_UNIX)"
        frames = restored.call("run_code", language="python", code=check)
        results = [header["result"]["text"] for header, _ in frames if header["type"] == "result"]
        self.assertEqual(results, ["(1, 2, True, True, 3, 'OrderedDict', <AddressFamily.AF_UNIX: 1>)"])
        note = output(frames, "stderr").decode()
        self.assertIn("sock: could not be saved", note)
        self.assertIn("gen: could not be saved", note)
        self.assertEqual(output(restored.call("run_code", language="python", code="x"), "stderr"), b"")
        self.assertEqual(restored.run("y", context=other)[1][0]["text"], "2")
        taken = ["default.pkl.restored", other_file + ".restored"]
        self.assertEqual(sorted(os.listdir(self.python_dir)), taken)

        _, restarted = self.start_agent()  # the new sandbox stopped and started again: nothing to apply
        self.assertEqual(restarted.final("state_report")["restored"], {})
        self.assertEqual(restarted.run("x")[2]["error"]["name"], "NameError")

        # The source sandbox stopping: what it saved for the snapshot is not for its own restart.
        self.assertEqual(source.final("snapshot_prepare")["type"], "ok")
        self.assertIn("default.pkl", os.listdir(self.python_dir))
        source_agent.proc.send_signal(signal.SIGTERM)
        self.assertEqual(source_agent.proc.wait(10), 0)
        self.assertNotIn("default.pkl", os.listdir(self.python_dir))

    @unittest.skipUnless(HAVE_DILL and HAVE_PANDAS, "dill or pandas is not installed")
    def test_dataframe_round_trip(self):
        _, source = self.start_agent()
        source.run("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})")
        reply = source.final("snapshot_prepare")
        self.assertEqual(reply["contexts"]["default"], {"saved": ["pd", "df"], "failed": []})
        _, restored = self.start_agent()
        _, results, _ = restored.run("(pd.__name__, int(df['a'].sum()))")
        self.assertEqual(results[0]["text"], "('pandas', 3)")

    def test_unreadable_state_file(self):
        os.makedirs(self.python_dir)
        with open(os.path.join(self.python_dir, "default.pkl"), "wb") as f:
            f.write(b"not a pickle")
        _, client = self.start_agent()
        report = client.final("state_report")["restored"]["default"]
        self.assertEqual((report["restored"], report["failed"]), ([], []))
        self.assertIn("UnpicklingError", report["error"])
        frames = client.call("run_code", language="python", code="1 + 1")
        self.assertEqual(frames[-1][0]["status"], "ok")
        self.assertIn(b"not everything was restored", output(frames, "stderr"))
        self.assertEqual(os.listdir(self.python_dir), ["default.pkl.restored"])

    def test_contexts_without_state_are_not_listed(self):
        _, client = self.start_agent()
        self.assertEqual(client.final("snapshot_prepare"), {"type": "ok", "id": 1, "contexts": {}})


class AutoStopTest(unittest.TestCase):
    """autoStopMs: with nothing running and no frame for that long, the agent exits (status 0)."""

    def start_agent(self, **settings):
        agent = AgentProcess(settings=settings)
        self.addCleanup(agent.stop)
        client = Client(agent.socket)
        self.addCleanup(client.close)
        return agent, client

    def test_stops_when_idle_and_kills_its_children(self):
        agent, client = self.start_agent(autoStopMs=800)
        kernel_pid = int(client.run("import os\nos.getpid()")[1][0]["text"])
        last_frame = time.monotonic()
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertGreater(time.monotonic() - last_frame, 0.7)
        self.assertTrue(process_gone(kernel_pid))
        self.assertFalse(os.path.exists(agent.socket))

    def test_a_running_command_keeps_it_alive(self):
        agent, client = self.start_agent(autoStopMs=800)
        rid = client.send("exec", argv=["sleep", "2"])
        time.sleep(1.5)
        self.assertIsNone(agent.proc.poll())
        self.assertEqual(client.collect(rid)[-1][0]["status"], "ok")
        ended = time.monotonic()
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertGreater(time.monotonic() - ended, 0.6)  # the clock started when it ended

    def test_a_running_cell_keeps_it_alive(self):
        agent, client = self.start_agent(autoStopMs=800)
        rid = client.send("run_code", language="python", code="import time\ntime.sleep(1.5)")
        time.sleep(1.2)
        self.assertIsNone(agent.proc.poll())
        self.assertEqual(client.collect(rid)[-1][0]["status"], "ok")
        ended = time.monotonic()
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertGreater(time.monotonic() - ended, 0.6)

    def test_frames_reset_the_clock(self):
        agent, client = self.start_agent(autoStopMs=800)
        for _ in range(6):
            time.sleep(0.3)
            self.assertEqual(client.final("ping")["type"], "ok")
        self.assertIsNone(agent.proc.poll())
        self.assertEqual(agent.proc.wait(5), 0)

    def test_configure(self):
        agent, client = self.start_agent(autoStopMs=800)
        self.assertEqual(client.final("configure", autoStopMs=None)["type"], "ok")
        time.sleep(1.2)
        self.assertIsNone(agent.proc.poll())
        reply = client.final("configure", autoStopMs="soon")
        self.assertEqual((reply["type"], reply["code"]), ("error", "EPROTO"))
        self.assertEqual(client.final("configure", autoStopMs=300)["type"], "ok")
        configured = time.monotonic()
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertGreater(time.monotonic() - configured, 0.25)


if __name__ == "__main__":
    unittest.main()
