"""Terminals over the server's WebSocket route, sync and async."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import Server

import kiln


class Screen:
    """Collects a terminal's bytes; ``until`` waits for a marker."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._changed = threading.Condition()

    def __call__(self, chunk: bytes) -> None:
        assert isinstance(chunk, bytes)
        with self._changed:
            self.data += chunk
            self._changed.notify_all()

    def until(self, marker: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while marker not in self.data:
                left = deadline - time.monotonic()
                assert left > 0, f"{marker!r} never appeared in {bytes(self.data)[-500:]!r}"
                self._changed.wait(left)


def test_a_terminal_types_resizes_reattaches_and_exits(sandbox: kiln.Sandbox) -> None:
    screen = Screen()
    with sandbox.pty.create(cols=100, rows=30, on_data=screen) as pty:
        pty.write("stty size; echo ready-$((6*7))\n")
        screen.until(b"ready-42")
        assert b"30 100" in screen.data
        pty.resize(120, 40)
        pty.write("stty size\n")
        screen.until(b"40 120")
        pty.write("echo before-detach\n")
        screen.until(b"before-detach\r\n")
    # Detached; the shell lives on. Re-attaching replays the scrollback first.
    again = Screen()
    with sandbox.pty.connect(pty.id, on_data=again) as back:
        again.until(b"before-detach")
        back.write("exit 3\n")
        assert back.wait(timeout=15) == 3


def test_kill_ends_a_terminal_and_an_unknown_one_is_an_error(sandbox: kiln.Sandbox) -> None:
    with sandbox.pty.create(command=["sleep", "600"]) as pty:
        pty.kill()
        assert pty.wait(timeout=15) != 0
    with pytest.raises(kiln.KilnError) as err:
        sandbox.pty.connect("no-such-terminal")
    assert err.value.status == 404


def test_an_async_terminal(server: Server, sandbox: kiln.Sandbox) -> None:
    async def main() -> None:
        async with kiln.AsyncKiln(url=server.url, api_key=server.admin_key) as k:
            sb = await k.get(sandbox.id)
            out = bytearray()
            pty = await sb.pty.create(
                command=["sh", "-c", "echo async-$((2+2)); read x; echo got-$x; exit 5"], on_data=out.extend
            )
            await pty.write("zz\n")
            assert await pty.wait(timeout=15) == 5
            await pty.close()
            assert b"async-4" in out and b"got-zz" in out

    asyncio.run(main())
