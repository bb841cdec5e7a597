"""`run_code` and the Python kernel: results, errors, timeouts, restarts."""

import os
import signal
import subprocess
import sys
import time
import unittest

from harness import HAVE_MATPLOTLIB, HAVE_PANDAS, AgentTest, agent, output, process_gone, start_shared, stop_shared


def setUpModule():
    start_shared()


def tearDownModule():
    stop_shared()


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

    def test_killed_idle_kernel_says_the_context_restarted(self):
        _, results, _ = self.client.run("import os\nx = 41\nos.getpid()", context="idle-kill")
        pid = int(results[0]["text"])
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(process_gone(pid))
        time.sleep(0.2)  # the agent reaps it and starts a new kernel
        _, _, done = self.client.run("x + 1", context="idle-kill")
        self.assertEqual((done["status"], done["contextRestarted"]), ("error", True))
        self.assertEqual(done["error"]["name"], "NameError")
        self.assertIn("was restarted", done["error"]["value"])
        _, _, done = self.client.run("x + 1", context="idle-kill")  # reported once, explained until a cell succeeds
        self.assertFalse(done["contextRestarted"])
        self.assertIn("was restarted", done["error"]["value"])
        self.assertEqual(self.client.run("x = 1", context="idle-kill")[2]["status"], "ok")
        _, _, done = self.client.run("y", context="idle-kill")
        self.assertEqual(done["error"]["name"], "NameError")
        self.assertNotIn("was restarted", done["error"]["value"])

    def test_results_are_capped_in_total(self):
        code = "for i in range(40):\n    display('x' * 100_000)"
        frames = self.client.call(
            "run_code", language="python", context="cap", code=code, maxResultBytes=1_000_000
        )
        results = [header["result"] for header, _ in frames if header["type"] == "result"]
        self.assertEqual(len(results), 9)  # each ~100 KB encoded; the 10th would pass 1 MB
        self.assertEqual((frames[-1][0]["status"], frames[-1][0]["truncated"]), ("ok", True))
        frames = self.client.call("run_code", language="python", context="cap", code=code)
        self.assertEqual(sum(1 for header, _ in frames if header["type"] == "result"), 40)

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
        with open(os.path.join(agent().workdir, "helper_module.py"), "w") as f:
            f.write("ANSWER = 42\n")
        _, results, _ = self.client.run("import os, helper_module\n(os.getcwd(), helper_module.ANSWER)")
        self.assertEqual(results[0]["text"], repr((os.path.realpath(agent().workdir), 42)))

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
