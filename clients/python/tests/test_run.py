"""exec and run_code, as JSON and streamed over SSE."""

from __future__ import annotations

import time
from typing import List, Tuple

import httpx
import pytest

import kiln

from conftest import Server


def test_exec_a_shell_line_and_an_argv(sandbox: kiln.Sandbox) -> None:
    r = sandbox.exec("echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr, r.status, r.ok) == (3, "out\n", "err\n", "error", False)
    assert r.duration_ms >= 0 and r.truncated is False
    argv = sandbox.exec(["printf", "%s|", "a b", "$HOME"])
    assert argv.stdout == "a b|$HOME|"
    assert argv.ok


def test_exec_options(sandbox: kiln.Sandbox) -> None:
    r = sandbox.exec("pwd; echo $GREETING; cat", cwd="/tmp", env={"GREETING": "hej"}, stdin="from stdin")
    assert r.stdout == "/tmp\nhej\nfrom stdin"
    timed_out = sandbox.exec("sleep 10", timeout_ms=500)
    assert timed_out.status == "timeout"
    cut = sandbox.exec("head -c 5000 /dev/zero | tr '\\0' x", max_output_bytes=100)
    assert cut.truncated is True
    assert len(cut.stdout) <= 100


def test_exec_streams_output_as_it_arrives(sandbox: kiln.Sandbox) -> None:
    start = time.monotonic()
    chunks: List[Tuple[float, str]] = []
    errs: List[str] = []
    r = sandbox.exec(
        "for i in 1 2 3; do echo $i; sleep 0.4; done; echo done >&2",
        on_stdout=lambda s: chunks.append((time.monotonic() - start, s)),
        on_stderr=errs.append,
    )
    assert r.ok and r.stdout == "1\n2\n3\n"
    assert "".join(s for _, s in chunks) == "1\n2\n3\n"
    assert all(isinstance(s, str) for _, s in chunks)
    assert "".join(errs) == "done\n"
    # The first line arrived while the command still ran (it runs 1.2 s after it).
    end = time.monotonic() - start
    assert chunks[0][0] < end - 0.6, (chunks, end)


def test_run_code_results_state_and_errors(sandbox: kiln.Sandbox) -> None:
    e = sandbox.run_code("x = 6\nprint('hi')\nx * 7")
    assert e.status == "ok"
    assert e.stdout == "hi\n"
    assert e.text == "42"
    assert e.results[0].is_main_result
    assert sandbox.run_code("x + 1").text == "7"  # state persists in the context
    assert sandbox.run_code("x", context="other").error is not None  # another context is fresh
    failed = sandbox.run_code("1 / 0")
    assert failed.status == "error"
    assert failed.error is not None and failed.error.name == "ZeroDivisionError"
    assert "ZeroDivisionError" in failed.error.traceback
    js = sandbox.run_code("const a = [1, 2, 3]; a.map((v) => v * 2)", language="javascript")
    assert js.status == "ok" and js.text is not None and "2" in js.text


def test_run_code_streams_and_renders_a_chart(sandbox: kiln.Sandbox) -> None:
    out: List[str] = []
    shown: List[kiln.Result] = []
    e = sandbox.run_code(
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "print('plotting')\nplt.plot([1, 3, 2])\nplt.show()\n'done'",
        on_stdout=out.append,
        on_result=shown.append,
    )
    assert e.status == "ok", e.error
    assert "".join(out) == "plotting\n"
    charts = [r for r in e.results if r.png]
    assert len(charts) == 1
    assert [r.png for r in shown if r.png] == [charts[0].png]  # shown early, as it appeared
    assert charts[0].png.startswith("iVBOR")  # base64 PNG text, as in the HTTP API
    bundle = charts[0]._repr_mimebundle_()
    assert bundle["image/png"] == charts[0].png
    rendered = e._repr_mimebundle_()
    assert f"data:image/png;base64,{charts[0].png}" in rendered["text/html"]
    assert "plotting" in rendered["text/plain"]
    single = sandbox.run_code("'only'")._repr_mimebundle_()
    assert single == {"text/plain": "'only'"}


def test_a_timeout_is_a_status(sandbox: kiln.Sandbox) -> None:
    e = sandbox.run_code("import time\ntime.sleep(10)", timeout_ms=700, context="sleepy")
    assert e.status == "timeout"


def test_waiting_outlasts_the_read_timeout(server: Server, sandbox: kiln.Sandbox) -> None:
    """processes.wait() is a stream: a process quieter than the client's read timeout is waited for."""
    with kiln.Kiln(url=server.url, api_key=server.admin_key, timeout=1.5) as impatient:
        quiet = impatient.get(sandbox.id)
        started = quiet.processes.start("sleep 3; exit 5")
        assert quiet.processes.wait(started.pid) == 5


def test_background_processes(sandbox: kiln.Sandbox) -> None:
    started = sandbox.processes.start(
        "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo e >&2; exit 4", tag="count"
    )
    assert started.pid > 0 and started.tag == "count"
    listed = {p.pid: p for p in sandbox.processes.list()}
    assert listed[started.pid].tag == "count"
    out: List[str] = []
    logs = sandbox.processes.logs(started.pid, follow=True, on_stdout=out.append)
    assert "".join(out) == "line1\nline2\nline3\n"
    assert logs.stdout == "line1\nline2\nline3\n" and logs.stderr == "e\n" and logs.exit_code == 4
    assert sandbox.processes.wait(started.pid) == 4
    assert sandbox.processes.logs(started.pid).stdout == "line1\nline2\nline3\n"
    ended = {p.pid: p for p in sandbox.processes.list()}[started.pid]
    assert ended.running is False and ended.exit_code == 4
    sleeper = sandbox.processes.start(["sleep", "60"], cwd="/tmp")
    sandbox.processes.signal(sleeper.pid, "SIGKILL")
    assert sandbox.processes.wait(sleeper.pid) != 0
    with pytest.raises(kiln.KilnError) as err:
        sandbox.processes.logs(999999)
    assert err.value.status == 404


def test_preview_url_serves_a_port_with_its_token(sandbox: kiln.Sandbox) -> None:
    sandbox.files.write("site/index.html", "<h1>from the sandbox</h1>")
    server = sandbox.processes.start(["python3", "-m", "http.server", "8000"], cwd="/workspace/site")
    try:
        preview = sandbox.preview_url(8000, expires_in_ms=60_000)
        assert preview.token in preview.url and preview.expires_at
        deadline = time.monotonic() + 15
        while True:
            answer = httpx.get(preview.url)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # the server inside is still starting
        assert answer.status_code == 200 and answer.text == "<h1>from the sandbox</h1>"
        assert httpx.get(preview.url.split("?")[0]).status_code == 401  # no token
    finally:
        sandbox.processes.signal(server.pid)
