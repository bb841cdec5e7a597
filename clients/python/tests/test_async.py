"""AsyncKiln: the same operations on asyncio, truly concurrent."""

from __future__ import annotations

import asyncio
import time
from typing import List

import pytest
from conftest import LABELS, Server

import kiln


def test_async_client_end_to_end(server: Server) -> None:
    async def main() -> None:
        async with kiln.AsyncKiln(url=server.url, api_key=server.admin_key) as k:
            assert (await k.health()).status == "ok"
            async with k.create(language="python", labels={**LABELS, "case": "async"}) as sb:
                assert isinstance(sb, kiln.AsyncSandbox)
                assert [s.id for s in await k.list(labels={"case": "async"})] == [sb.id]
                r = await sb.exec("echo $X", env={"X": "async"})
                assert r.stdout == "async\n"
                out: List[str] = []
                e = await sb.run_code("for i in range(3): print(i)\n'ok'", on_stdout=out.append)
                assert "".join(out) == "0\n1\n2\n" and e.text == "'ok'"
                await sb.files.write("a.txt", "async file")
                assert await sb.files.read_text("a.txt") == "async file"
                assert await sb.files.exists("a.txt")
                assert [f.name for f in await sb.files.list(".")] == ["a.txt"]
                with pytest.raises(kiln.FileNotFoundError):
                    await sb.files.read("missing")
                same = await k.get_or_create(sb.name or sb.id)
                assert same.id == sb.id
                sandbox_id = sb.id
            with pytest.raises(kiln.SandboxNotFoundError):
                await k.get(sandbox_id)
        async with kiln.AsyncKiln(url=server.url, api_key="kiln_wrong_key_0000") as bad:
            with pytest.raises(kiln.UnauthorizedError):
                await bad.list()

    asyncio.run(main())


def test_fifty_concurrent_calls_take_about_as_long_as_one(server: Server, sandbox: kiln.Sandbox) -> None:
    async def main() -> tuple[float, float]:
        async with kiln.AsyncKiln(url=server.url, api_key=server.admin_key) as k:
            sb = await k.get(sandbox.id)
            t = time.monotonic()
            await sb.exec("sleep 2")
            one = time.monotonic() - t
            t = time.monotonic()
            results = await asyncio.gather(*(sb.exec(f"sleep 2; echo {i}") for i in range(50)))
            many = time.monotonic() - t
            assert [r.stdout for r in results] == [f"{i}\n" for i in range(50)]
            return one, many

    one, many = asyncio.run(main())
    print(f"one call {one:.2f} s, 50 concurrent calls {many:.2f} s (one after another: {50 * one:.0f} s)")
    # One after another they would take 50x. Concurrent, the server's and the sandbox's process
    # starts add a little (4.4x was seen at load 13 on 2 cores): what this checks is that the
    # client does not serialise the calls, so the bound sits far from both.
    assert many < 15 * one, (one, many)
