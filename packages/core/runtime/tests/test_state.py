"""Saving and restoring interpreter state for snapshots."""

import os
import shutil
import signal
import socket
import tempfile
import unittest

from harness import HAVE_DILL, HAVE_PANDAS, AgentProcess, Client, output

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
