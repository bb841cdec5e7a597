"""The test session's own Kiln server: ``kiln serve`` (packages/cli) on a free port, with a temp
data dir and a known admin key, on this machine's real Docker engine. Every sandbox a test makes
carries the label ``pysdk-test=<run id>``; the session deletes what is left of them at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # the SDK from this checkout, installed or not

import kiln  # noqa: E402

REPO = HERE.parents[2]
RUN_ID = secrets.token_hex(4)
LABELS: Dict[str, str] = {"pysdk-test": RUN_ID}


def _node() -> str:
    for candidate in (
        os.environ.get("KILN_NODE"),
        str(REPO / ".tools" / "node" / "bin" / "node"),
        shutil.which("node"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("node (>= 22) not found: run `source scripts/setup.sh` first")


@dataclass
class Server:
    url: str
    admin_key: str
    process: subprocess.Popen  # type: ignore[type-arg]
    data_dir: str
    log: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(extra_env: Optional[Dict[str, str]] = None) -> Server:
    """``node packages/cli/src/bin.ts serve --port 0``: its first stdout line is the URL."""
    data_dir = tempfile.mkdtemp(prefix="kiln-pysdk-")
    admin_key = "kiln_pysdk_" + secrets.token_hex(16)
    env = {**os.environ, "KILN_ADMIN_KEY": admin_key, **(extra_env or {})}
    env.pop("KILN_URL", None)
    log = os.path.join(data_dir, "server.log")
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [
                _node(),
                str(REPO / "packages" / "cli" / "src" / "bin.ts"),
                "serve",
                "--port",
                "0",
                "--data-dir",
                data_dir,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("http"):
        process.kill()
        raise RuntimeError(f"kiln serve did not start: {line!r}\n{Path(log).read_text()[-4000:]}")
    return Server(url=line, admin_key=admin_key, process=process, data_dir=data_dir, log=log)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    # Keep-alive comments every 0.5 s (15 s by default): streams quieter than a client's read
    # timeout are tested in seconds (test_run.py, test_waiting_outlasts_the_read_timeout).
    srv = start_server({"KILN_SSE_KEEPALIVE_MS": "500"})
    try:
        yield srv
    finally:
        try:
            with kiln.Kiln(url=srv.url, api_key=srv.admin_key) as client:
                for info in client.list(labels=LABELS):
                    try:
                        client.get(info.id).delete()
                    except kiln.SandboxNotFoundError:
                        pass
        finally:
            srv.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[kiln.Kiln]:
    with kiln.Kiln(url=server.url, api_key=server.admin_key) as k:
        yield k


@pytest.fixture(scope="session")
def sandbox(client: kiln.Kiln) -> Iterator[kiln.Sandbox]:
    """One sandbox shared by the tests that only run things in it (creating one takes seconds)."""
    sb = client.create(language="python", labels=LABELS)
    try:
        yield sb
    finally:
        sb.delete()
