"""Terminals (`pty_*`), background processes (`proc_*`) and port forwarding (`port_*`)."""

import socket
import sys
import threading
import time
import unittest

from harness import RUNTIME, AgentTest, Client, agent, output, start_shared, stop_shared

sys.path.insert(0, RUNTIME)
from kiln_agent.limits import MAX_TERMINALS  # noqa: E402


def setUpModule():
    start_shared()


def tearDownModule():
    stop_shared()


def read_until(client, rid, needle, timeout=10):
    """Bytes of `data` frames of rid until needle appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} never came; got {seen[-300:]!r}")
        header, body = client.next_for(rid)
        if header["type"] == "data":
            seen += body
        elif header["type"] != "attached":
            raise AssertionError(f"unexpected {header}")
    return seen


class PtyTest(AgentTest):
    def create(self, **fields):
        reply = self.client.final("pty_create", cols=80, rows=24, **fields)
        self.assertEqual(reply["type"], "ok", reply)
        return reply["ptyId"]

    def test_shell_echo_resize_and_exit(self):
        pty = self.create(argv=["/bin/sh"])
        rid = self.client.send("pty_attach", ptyId=pty)
        self.client.send("pty_input", b"stty size\n", request_id=0, target=pty)
        read_until(self.client, rid, b"24 80")
        self.assertEqual(self.client.final("pty_resize", ptyId=pty, cols=120, rows=40)["type"], "ok")
        self.client.send("pty_input", b"stty size; tty; exit 7\n", request_id=0, target=pty)
        seen = read_until(self.client, rid, b"40 120")
        while True:
            header, body = self.client.next_for(rid)
            if header["type"] == "exit":
                break
            seen += body
        self.assertEqual(header["exitCode"], 7)
        self.assertIn(b"/dev/pts/", seen)
        self.assertEqual(self.client.final("pty_wait", ptyId=pty)["exitCode"], 7)

    def test_reattach_replays_scrollback(self):
        pty = self.create(argv=["/bin/sh", "-c", "echo first; read x; echo got $x; sleep 30"])
        first = Client(agent().socket)
        rid = first.send("pty_attach", ptyId=pty)
        read_until(first, rid, b"first")
        first.close()  # the session outlives its client
        self.client.send("pty_input", b"hello\n", request_id=0, target=pty)
        second = Client(agent().socket)
        try:
            rid = second.send("pty_attach", ptyId=pty)
            seen = read_until(second, rid, b"got hello")
            self.assertTrue(seen.startswith(b"first"), seen)
        finally:
            second.close()
        self.assertEqual(self.client.final("pty_kill", ptyId=pty)["type"], "ok")
        self.assertEqual(self.client.final("pty_wait", ptyId=pty)["exitCode"], 137)

    def test_ctrl_c_reaches_the_foreground_program(self):
        pty = self.create(argv=["/bin/sh", "-c", "trap 'echo INTERRUPTED; exit 3' INT; echo ready; while :; do sleep 0.05; done"])
        rid = self.client.send("pty_attach", ptyId=pty)
        read_until(self.client, rid, b"ready")
        self.client.send("pty_input", b"\x03", request_id=0, target=pty)
        read_until(self.client, rid, b"INTERRUPTED")
        self.assertEqual(self.client.final("pty_wait", ptyId=pty)["exitCode"], 3)

    def test_slow_reader_skips_and_never_stalls_the_program_or_others(self):
        total = 12 << 20  # well past the 4 MiB a connection may hold unsent, and the 1 MiB ring
        # Paced (1 MiB every 0.1 s) so that the fast reader can keep up even on a busy machine:
        # a reader that falls 4 MiB behind is skipped too, by design.
        pty = self.create(
            argv=["/bin/sh", "-c", "stty raw -echo; sleep 0.3; for i in $(seq 12); do head -c 1048576 /dev/zero; sleep 0.1; done"]
        )
        slow = Client(agent().socket)
        try:
            slow_rid = slow.send("pty_attach", ptyId=pty)  # ...and does not read for now
            fast_rid = self.client.send("pty_attach", ptyId=pty)
            received, started = 0, time.monotonic()
            while True:
                header, body = self.client.next_for(fast_rid)
                if header["type"] == "exit":
                    break
                received += len(body)
            self.assertEqual(received, total)
            self.assertLess(time.monotonic() - started, 20)
            offsets, slow_bytes = [], 0
            while True:
                header, body = slow.next_for(slow_rid)
                if header["type"] == "exit":
                    break
                if header["type"] == "data":
                    offsets.append((header["offset"], len(body)))
                    slow_bytes += len(body)
            self.assertLess(slow_bytes, total)  # it skipped what the ring no longer held
            gaps = [b for (a, n), (b, _) in zip(offsets, offsets[1:]) if a + n != b]
            self.assertEqual(len(gaps), 1)
            self.assertEqual(offsets[-1][0] + offsets[-1][1], total)  # and caught up to the end
        finally:
            slow.close()

    def test_running_terminals_are_bounded(self):
        running = sum(1 for s in self.client.final("pty_list")["sessions"] if s["running"])
        made = [self.create(argv=["sleep", "60"]) for _ in range(MAX_TERMINALS - running)]
        reply = self.client.final("pty_create", cols=80, rows=24, argv=["sleep", "60"])
        self.assertEqual((reply["type"], reply["code"]), ("error", "EAGAIN"))
        for pty in made:
            self.client.final("pty_kill", ptyId=pty)
            self.client.final("pty_wait", ptyId=pty)

    def test_unknown_session(self):
        reply = self.client.final("pty_attach", ptyId="nope")
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOENT"))
        reply = self.client.final("pty_create", cols=0, rows=24)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EPROTO"))


class ProcessTest(AgentTest):
    def test_start_logs_follow_wait_list(self):
        reply = self.client.final("proc_start", argv=["/bin/sh", "-c", "echo out; echo err >&2; sleep 0.3; echo late; exit 4"], tag="job")
        pid = reply["pid"]
        self.assertEqual(reply["tag"], "job")
        frames = self.client.call("proc_logs", pid=pid, follow=True)
        self.assertEqual(frames[-1][0], {"type": "exit", "id": frames[-1][0]["id"], "exitCode": 4})
        self.assertEqual(output(frames, "stdout"), b"out\nlate\n")
        self.assertEqual(output(frames, "stderr"), b"err\n")
        listed = {p["pid"]: p for p in self.client.final("proc_list")["processes"]}
        self.assertEqual(listed[pid]["running"], False)
        self.assertEqual(listed[pid]["exitCode"], 4)
        self.assertEqual(listed[pid]["tag"], "job")
        frames = self.client.call("proc_logs", pid=pid)
        self.assertEqual(output(frames, "stdout"), b"out\nlate\n")
        self.assertEqual(frames[-1][0]["type"], "ok")

    def test_survives_its_client_and_signal(self):
        other = Client(agent().socket)
        pid = other.final("proc_start", argv=["sleep", "30"])["pid"]
        other.close()
        time.sleep(0.2)
        listed = {p["pid"]: p for p in self.client.final("proc_list")["processes"]}
        self.assertTrue(listed[pid]["running"])
        self.assertEqual(self.client.final("proc_signal", pid=pid, signal="SIGTERM")["type"], "ok")
        self.assertEqual(self.client.final("proc_wait", pid=pid)["exitCode"], 143)

    def test_log_ring_is_bounded(self):
        pid = self.client.final("proc_start", argv=["/bin/sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"])["pid"]
        self.client.final("proc_wait", pid=pid)
        frames = self.client.call("proc_logs", pid=pid)
        self.assertEqual(len(output(frames, "stdout")), 1 << 20)


class PortForwardTest(AgentTest):
    def test_echo_both_ways(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def serve():
            conn, _ = server.accept()
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(data.upper())
            conn.close()

        thread = threading.Thread(target=serve)
        thread.start()
        rid = self.client.send("port_open", port=port)
        self.assertEqual(self.client.next_for(rid)[0]["type"], "ok")
        self.client.send("port_data", b"hello " * 50000, request_id=0, target=rid)
        self.client.send("port_end", request_id=0, target=rid)
        received = b""
        while True:
            header, body = self.client.next_for(rid)
            if header["type"] == "closed":
                break
            received += body
        thread.join()
        server.close()
        self.assertEqual(received, b"HELLO " * 50000)

    def test_refused(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        reply = self.client.final("port_open", port=port)
        self.assertEqual((reply["type"], reply["code"]), ("error", "ECONNREFUSED"))


if __name__ == "__main__":
    unittest.main()
