"""autoStopMs: the agent stops itself when idle."""

import os
import time
import unittest

from harness import AgentProcess, Client, process_gone

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


class OrphanStopTest(unittest.TestCase):
    """orphanStopMs: an unclaimed pool member stops once no client has been connected that long."""

    def start_agent(self):
        agent = AgentProcess()
        self.addCleanup(agent.stop)
        return agent

    def test_stops_when_its_owner_is_gone(self):
        agent = self.start_agent()
        owner = Client(agent.socket)
        self.assertEqual(owner.final("configure", orphanStopMs=400)["type"], "ok")
        time.sleep(0.8)  # the owner's connection is open: no stop, however long
        self.assertIsNone(agent.proc.poll())
        other = Client(agent.socket)
        owner.close()
        time.sleep(0.8)  # another client still connected
        self.assertIsNone(agent.proc.poll())
        other.close()
        closed = time.monotonic()
        self.assertEqual(agent.proc.wait(5), 0)
        self.assertGreater(time.monotonic() - closed, 0.35)

    def test_a_claim_clears_it(self):
        agent = self.start_agent()
        client = Client(agent.socket)
        self.assertEqual(client.final("configure", orphanStopMs=300)["type"], "ok")
        self.assertEqual(client.final("configure", autoStopMs=None)["type"], "ok")  # the claim's settings
        client.close()
        time.sleep(0.8)
        self.assertIsNone(agent.proc.poll())
        reply = Client(agent.socket).final("hello")
        self.assertEqual(reply["type"], "ok")


if __name__ == "__main__":
    unittest.main()
