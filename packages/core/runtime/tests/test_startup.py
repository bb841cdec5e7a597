"""The agent's start and end: the default kernel warms once the agent is idle; `exit` ends it."""

import os
import time
import unittest

from harness import AgentProcess, Client, process_gone


def kernels_of(pid):
    """Pids of the Python kernels the agent `pid` started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"kernel_python.py" in cmdline:
            found.append(int(entry))
    return found


def wait_for(predicate, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class WarmDefaultKernelTest(unittest.TestCase):
    def setUp(self):
        self.agent = AgentProcess()
        self.addCleanup(self.agent.stop)
        self.client = Client(self.agent.socket)
        self.addCleanup(self.client.close)

    def test_not_beside_a_first_command_then_warm_once_idle(self):
        self.assertEqual(self.client.final("hello")["type"], "ok")
        rid = self.client.send("exec", argv=["sleep", "0.6"])
        time.sleep(0.4)  # past the idle delay, but the command runs
        self.assertEqual(kernels_of(self.agent.proc.pid), [], "no kernel starts while a command runs")
        self.client.collect(rid)
        self.assertTrue(wait_for(lambda: kernels_of(self.agent.proc.pid), within=5), "warm once idle")
        _, results, done = self.client.run("6 * 7")
        self.assertEqual((done["status"], results[0]["text"]), ("ok", "42"))
        self.assertEqual(len(kernels_of(self.agent.proc.pid)), 1, "the warm kernel ran the code")

    def test_run_code_first_starts_it_at_once(self):
        _, results, done = self.client.run("1 + 1")
        self.assertEqual((done["status"], results[0]["text"]), ("ok", "2"))
        time.sleep(0.3)
        self.assertEqual(len(kernels_of(self.agent.proc.pid)), 1, "the idle warm-up starts no second kernel")


class ExitTest(unittest.TestCase):
    def test_exit_answers_kills_what_it_started_and_ends_the_agent(self):
        agent = AgentProcess(stdio=True)
        self.addCleanup(agent.stop)
        from harness import Pipes

        client = Client(Pipes(agent.proc))
        rid = client.send("exec", argv=["sh", "-c", "echo $$; exec sleep 100"])
        _, body = client.next_for(rid)
        child = int(body)
        _, results, _ = client.run("1")  # a kernel too
        self.assertEqual(results[0]["text"], "1")
        kernels = kernels_of(agent.proc.pid)
        self.assertEqual(len(kernels), 1)
        self.assertEqual(client.final("exit")["type"], "ok")
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertTrue(process_gone(child, within=3), "its command was killed")
        self.assertTrue(all(process_gone(pid, within=3) for pid in kernels), "its kernel was killed")


if __name__ == "__main__":
    unittest.main()
