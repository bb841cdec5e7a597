"""The README's example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import HERE, Server


def test_quickstart_runs(server: Server) -> None:
    env = {
        **os.environ,
        "KILN_URL": server.url,
        "KILN_API_KEY": server.admin_key,
        "PYTHONPATH": str(HERE.parent / "src"),
    }
    out = subprocess.run(
        [sys.executable, str(HERE.parent / "examples" / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "run_code: 42 ok" in out.stdout
    assert "live: 0" in out.stdout
    assert "chart: [['text', 'png']]" in out.stdout
    assert "downloaded: ['numbers.csv']" in out.stdout
