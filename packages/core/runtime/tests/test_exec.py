"""`exec`: commands, stdin, env, cwd, timeouts, caps, process groups."""

import json
import os
import signal
import time
import unittest

from harness import AgentTest, Client, agent, agent_rss_kib, output, process_gone, start_shared, stop_shared


def setUpModule():
    start_shared()


def tearDownModule():
    stop_shared()


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
        with open(agent().env_file, "w") as f:
            json.dump({"FROM_FILE": "file", "SHARED": "file"}, f)
        try:
            self.assertEqual(self.client.final("reload_env")["type"], "ok")
            out, _, _ = self.client.exec(
                'echo "$KILN_TEST_BASE $FROM_FILE $SHARED"', env={"SHARED": "request"}
            )
            self.assertEqual(out, b"from-agent file request\n")
        finally:
            os.unlink(agent().env_file)
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
        with open(agent().env_file, "w") as f:
            f.write("[1, 2]")
        try:
            reply = self.client.final("reload_env")
            self.assertEqual((reply["type"], reply["code"]), ("error", "EINVAL"))
        finally:
            os.unlink(agent().env_file)

    def test_cwd(self):
        out, _, _ = self.client.exec("pwd", cwd=agent().dir)
        self.assertEqual(out.decode().strip(), os.path.realpath(agent().dir))
        out, _, _ = self.client.exec("pwd")
        self.assertEqual(out.decode().strip(), os.path.realpath(agent().workdir))
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
        other = Client(agent().socket)
        rid = other.send("exec", argv=["/bin/sh", "-c", "echo $$; exec sleep 100"])
        pid = int(other.next_for(rid)[1])
        other.close()
        self.assertTrue(process_gone(pid))

    def test_children_get_high_oom_score(self):
        out, _, _ = self.client.exec("cat /proc/self/oom_score_adj")
        self.assertEqual(out, b"1000\n")

    def test_the_agent_keeps_its_own_oom_score(self):
        # The agent raises its own score only for the fork of a child (so the child is born
        # with it), and sets it back: with commands run and one still running, it is where it
        # started (this process's, which it inherited). Polled: a spawn of its own (the default
        # kernel's warm-up) may have it raised for a moment.
        with open("/proc/self/oom_score_adj") as f:
            start = f.read()
        self.assertNotEqual(start, "1000\n")
        out, _, _ = self.client.exec("sleep 5 & cat /proc/$!/oom_score_adj; cat /proc/self/oom_score_adj")
        self.assertEqual(out, b"1000\n1000\n")
        rid = self.client.send("exec", argv=["/bin/sh", "-c", "echo started; exec sleep 5"])
        try:
            self.assertIn(b"started", self.client.next_for(rid)[1])
            deadline = time.monotonic() + 2
            while True:
                with open(f"/proc/{agent().proc.pid}/oom_score_adj") as f:
                    now = f.read()
                if now == start or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            self.assertEqual(now, start)
        finally:
            self.client.send_to("cancel", rid)
            self.client.collect(rid)
