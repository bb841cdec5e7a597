"""The client attached to the agent's stdin/stdout (the host that created the sandbox)."""

import os
import unittest

from harness import AgentProcess, Client, Pipes


class StdioTest(unittest.TestCase):
    def setUp(self):
        self.agent = AgentProcess(stdio=True)
        self.addCleanup(self.agent.stop)
        self.client = Client(Pipes(self.agent.proc))

    def test_requests_over_stdio_next_to_the_socket(self):
        self.assertEqual(self.client.final("hello")["type"], "ok")
        out, _, exit_header = self.client.exec("echo over-stdio")
        self.assertEqual((out, exit_header["exitCode"]), (b"over-stdio\n", 0))
        # The socket serves other clients at the same time.
        other = Client(self.agent.socket)
        self.addCleanup(other.close)
        out, _, _ = other.exec("echo over-socket")
        self.assertEqual(out, b"over-socket\n")
        stdout, results, done = self.client.run("1 + 1")
        self.assertEqual((done["status"], results[0]["text"]), ("ok", "2"))

    def test_children_never_hold_the_channel(self):
        # The agent's own descriptors 0 and 1 are /dev/null: nothing it spawns can inherit the channel.
        self.assertEqual(self.client.final("hello")["type"], "ok")
        pid = self.agent.proc.pid
        for fd in (0, 1):
            self.assertEqual(os.readlink(f"/proc/{pid}/fd/{fd}"), "/dev/null")
        channel = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")} & {
            f"pipe:[{os.fstat(self.agent.proc.stdin.fileno()).st_ino}]",
            f"pipe:[{os.fstat(self.agent.proc.stdout.fileno()).st_ino}]",
        }
        self.assertEqual(len(channel), 2, "the agent keeps the channel on private descriptors")
        # A command's own descriptors: none of them is the channel.
        out, _, _ = self.client.exec("for f in /proc/$$/fd/*; do readlink $f; done")
        self.assertFalse(channel & set(out.decode().split()), out)
        # The default Python context's kernel, likewise.
        out, _, done = self.client.run(
            "import os\nfor f in os.listdir('/proc/self/fd'):\n    try:\n        print(os.readlink(f'/proc/self/fd/{f}'))\n    except OSError:\n        pass"
        )
        self.assertEqual(done["status"], "ok", done)
        self.assertIn("/dev/null", out.decode())
        self.assertFalse(channel & set(out.decode().split()), out)

    def test_eof_ends_the_stdio_client_and_cancels_its_requests(self):
        rid = self.client.send("exec", argv=["sh", "-c", "echo $$; exec sleep 100"])
        header, body = self.client.next_for(rid)
        child = int(body)
        self.client.close()  # the engine closes stdin when the attached client goes
        from harness import process_gone

        self.assertTrue(process_gone(child, within=5), "its exec was cancelled")
        # The agent itself goes on serving its socket.
        other = Client(self.agent.socket)
        self.addCleanup(other.close)
        self.assertEqual(other.final("hello")["type"], "ok")


class NoStdinTest(unittest.TestCase):
    def test_without_an_open_stdin_the_agent_serves_its_socket_alone(self):
        agent = AgentProcess(stdio="devnull")
        self.addCleanup(agent.stop)
        client = Client(agent.socket)
        self.addCleanup(client.close)
        self.assertEqual(client.final("hello")["type"], "ok")
        self.assertIsNone(agent.proc.poll())


if __name__ == "__main__":
    unittest.main()
