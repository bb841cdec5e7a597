"""Framing, hello, ping, malformed requests; the env a claim writes."""

import json
import struct
import time
import unittest

from harness import AgentProcess, AgentTest, Client, agent, start_shared, stop_shared


def setUpModule():
    start_shared()


def tearDownModule():
    stop_shared()


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
        self.assertEqual(reply["pid"], agent().proc.pid)
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
        other = Client(agent().socket)
        self.assertEqual(other.final("hello")["type"], "ok")
        other.close()
