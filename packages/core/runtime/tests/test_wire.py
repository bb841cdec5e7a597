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

    def test_oversized_frame_is_refused_alone(self):
        # A cell running on this connection must survive a neighbour's oversized request.
        running = self.client.send("run_code", language="python", code="import time\ntime.sleep(0.5)\n'still here'")
        big = self.client.send("exec", body=b"x" * (33 << 20), argv=["true"])
        reply = self.client.next_for(big)[0]
        self.assertEqual((reply["type"], reply["code"]), ("error", "E2BIG"))
        self.client.sock.sendall(struct.pack(">II", 2 << 20, 0) + b"y" * (2 << 20))  # header over 1 MiB
        reply = self.client.next_for(None)[0]
        self.assertEqual((reply["type"], reply["code"]), ("error", "E2BIG"))
        frames = self.client.collect(running)
        self.assertEqual(frames[-1][0]["status"], "ok")
        self.assertEqual(frames[-2][0]["result"]["text"], "'still here'")
        self.assertEqual(self.client.final("hello")["type"], "ok")

    def test_fields_in_body(self):
        code = "x = '" + "a" * (2 << 20) + "'\nlen(x)"  # a 2 MB cell
        fields = json.dumps({"language": "python", "context": "big", "code": code}).encode()
        rid = self.client.send("run_code", body=fields, fieldsInBody=True)
        frames = self.client.collect(rid)
        self.assertEqual(frames[-1][0]["status"], "ok")
        self.assertEqual(frames[-2][0]["result"]["text"], str(2 << 20))
        reply = self.client.final("exec", body=b"[1, 2]", fieldsInBody=True)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EPROTO"))
