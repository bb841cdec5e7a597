"""A running exec steered from Python: live stdin (``stdin=`` an iterable) and cancellation
(``cancel=CancelToken()``, asyncio task cancellation), both clients, against the real server."""

from __future__ import annotations

import asyncio
import inspect
import io
import secrets
import threading
import time
from typing import AsyncIterator, Iterator, List

import httpx
import pytest
from conftest import Server

import kiln
from kiln import _protocol as p


def _wait_for(event: threading.Event, what: str) -> None:
    assert event.wait(30), f"timed out waiting for {what}"


def test_stdin_streams_from_an_iterable_while_the_command_runs(sandbox: kiln.Sandbox) -> None:
    echoed = threading.Event()
    seen: List[str] = []

    def on_stdout(text: str) -> None:
        seen.append(text)
        if "one" in "".join(seen):
            echoed.set()

    def lines() -> Iterator[bytes]:
        yield b"one\n"
        # The command has it (and echoed it back) before the next chunk exists: live, not buffered.
        _wait_for(echoed, "the first line to come back")
        yield "two\n"  # str chunks are UTF-8
        yield b"three\n"

    r = sandbox.exec("cat", stdin=lines(), on_stdout=on_stdout)
    assert (r.status, r.stdout) == ("ok", "one\ntwo\nthree\n")
    # Without a callback too, and the end of the iterable is the command's EOF.
    assert sandbox.exec("wc -l", stdin=iter([b"a\n", b"b\n"])).stdout.strip() == "2"


def test_stdin_bytes_that_are_not_text_and_a_binary_file_stream(sandbox: kiln.Sandbox) -> None:
    assert sandbox.exec("od -An -tx1", stdin=b"\xff\x00\xfe").stdout.split() == ["ff", "00", "fe"]
    big = io.BytesIO(bytes(3 * 1024 * 1024 + 7))
    assert sandbox.exec("wc -c", stdin=big).stdout.strip() == str(3 * 1024 * 1024 + 7)
    assert sandbox.exec("cat", stdin=io.StringIO("a text file\n" * 2)).stdout == "a text file\n" * 2
    with pytest.raises(kiln.InvalidArgumentError) as err:
        sandbox.exec("cat", stdin=42)  # type: ignore[arg-type]
    assert err.value.field == "stdin"


def test_stdin_after_the_command_exited_stops_being_read(sandbox: kiln.Sandbox) -> None:
    taken = [0]

    def endless() -> Iterator[bytes]:
        while True:
            taken[0] += 1
            yield b"x" * 65536

    t = time.monotonic()
    r = sandbox.exec("head -c 5", stdin=endless())
    assert (r.status, r.stdout) == ("ok", "xxxxx")
    r = sandbox.exec("true", stdin=endless())
    assert r.status == "ok" and time.monotonic() - t < 30
    time.sleep(0.5)
    settled = taken[0]
    time.sleep(1)
    assert taken[0] == settled, "the stdin kept being read after the command ended"


def test_the_stdin_and_cancel_routes_refuse_an_unknown_or_finished_command(
    server: Server, client: kiln.Kiln, sandbox: kiln.Sandbox
) -> None:
    with pytest.raises(kiln.NotFoundError):
        client._t.run(p.cancel_exec(sandbox.id, "exec_unknown"))
    # A finished command's id, read from its own stream's started event.
    with httpx.stream(
        "POST",
        f"{server.url}/v1/sandboxes/{sandbox.id}/exec",
        json={"command": "echo done", "cancellable": True},
        headers={"authorization": f"Bearer {server.admin_key}", "accept": "text/event-stream"},
        timeout=60,
    ) as response:
        body = response.read().decode()
    exec_id = body.split('"execId":"', 1)[1].split('"', 1)[0]
    assert '"status":"ok"' in body
    with pytest.raises(kiln.NotFoundError):
        client._t.run(p.cancel_exec(sandbox.id, exec_id))
    stdin = p.Call("POST", f"/v1/sandboxes/{sandbox.id}/exec/{exec_id}/stdin", body=p.LiveStdin([b"late\n"]))
    with pytest.raises(kiln.NotFoundError):
        client._t.run(_one(stdin))
    with pytest.raises(kiln.SandboxNotFoundError):
        client._t.run(p.cancel_exec("sbx_missing", exec_id))


def _one(call: p.Call) -> p.Op[None]:
    return (yield call)


def _gone(sandbox: kiln.Sandbox, marker: str) -> bool:
    """No process of the sandbox runs ``marker`` (``sleep NNNN``)."""
    head, digits = marker.split(" ")
    pattern = f"{head} {digits[0]}[{digits[1]}]{digits[2:]}"  # matches the marker, not itself
    r = sandbox.exec(f"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c '{pattern}' || true")
    return r.stdout.strip() == "0"


def test_cancel_kills_the_command_and_returns_its_killed_result(sandbox: kiln.Sandbox) -> None:
    marker = f"sleep 3{secrets.randbelow(900) + 100}"
    token = kiln.CancelToken()

    def on_stdout(text: str) -> None:
        if "started" in text:
            token.cancel()  # from the callback itself, while the stream is being read

    t = time.monotonic()
    r = sandbox.exec(f"echo started; {marker}; echo late", on_stdout=on_stdout, cancel=token)
    took = time.monotonic() - t
    assert (r.status, r.stdout) == ("killed", "started\n"), r
    assert took < 20, took
    assert _gone(sandbox, marker)
    # From another thread, before the command printed anything.
    token = kiln.CancelToken()
    threading.Timer(1.0, token.cancel).start()
    r = sandbox.exec(f"{marker}", cancel=token)
    assert r.status == "killed" and _gone(sandbox, marker)


def test_a_token_cancelled_before_or_after_the_call(sandbox: kiln.Sandbox) -> None:
    token = kiln.CancelToken()
    r = sandbox.exec("echo fine", cancel=token)
    assert (r.status, r.stdout) == ("ok", "fine\n")
    token.cancel()  # after the call: nothing to do
    token.cancel()
    assert token.cancelled
    with pytest.raises(kiln.AbortedError):
        sandbox.exec("touch /tmp/never", cancel=token)
    with pytest.raises(kiln.AbortedError):
        sandbox.run_code("1", cancel=token)
    assert not sandbox.files.exists("/tmp/never")


def test_cancel_stops_a_cell(sandbox: kiln.Sandbox) -> None:
    token = kiln.CancelToken()
    seen: List[str] = []

    def on_stdout(text: str) -> None:
        # print() writes "go" and "\n" separately and they may come as two chunks: cancel once the
        # whole line is here (a cancelled run_code closes its stream; what comes after is not read).
        seen.append(text)
        if "go\n" in "".join(seen):
            token.cancel()

    e = sandbox.run_code("import time\nprint('go', flush=True)\ntime.sleep(60)\n", on_stdout=on_stdout, cancel=token)
    assert e.status == "killed" and e.stdout == "go\n"
    assert e.error is not None and e.error.name == "Cancelled"
    # The context lives on: the next cell runs.
    assert sandbox.run_code("6 * 7").text == "42"


def test_async_stdin_and_cancellation(server: Server, sandbox: kiln.Sandbox) -> None:
    marker = f"sleep 4{secrets.randbelow(900) + 100}"

    async def main() -> None:
        async with kiln.AsyncKiln(url=server.url, api_key=server.admin_key) as k:
            sb = await k.get(sandbox.id)

            async def typed() -> AsyncIterator[bytes]:
                for line in (b"one\n", b"two\n", b"three\n"):
                    yield line
                    await asyncio.sleep(0.1)

            r = await sb.exec("wc -l", stdin=typed())
            assert r.stdout.strip() == "3"
            r = await sb.exec("cat", stdin=[b"a", "b"])  # a plain iterable too
            assert r.stdout == "ab"
            # A token cancelled on the loop stops every call it was given.
            assert inspect.iscoroutinefunction(sb.exec)
            token = kiln.CancelToken()
            asyncio.get_running_loop().call_later(1.0, token.cancel)
            one, two = await asyncio.gather(
                sb.exec(f"echo one; {marker}", cancel=token), sb.exec(f"echo two; {marker}", cancel=token)
            )
            assert (one.status, one.stdout, two.status, two.stdout) == ("killed", "one\n", "killed", "two\n")
            # Cancelling the task (here a timeout) ends the command on the server as well.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sb.exec(f"{marker}"), 1.0)
            for _ in range(50):
                if _gone(sandbox, marker):
                    break
                await asyncio.sleep(0.2)
            assert _gone(sandbox, marker)
            # Many at once: each its own stdin.
            results = await asyncio.gather(*(sb.exec("cat", stdin=iter([f"{i}".encode()])) for i in range(10)))
            assert [x.stdout for x in results] == [str(i) for i in range(10)]

    asyncio.run(main())


def test_the_sync_client_refuses_an_async_stdin(sandbox: kiln.Sandbox) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    source = chunks()
    with pytest.raises(kiln.InvalidArgumentError) as err:
        sandbox.exec("cat", stdin=source)
    assert err.value.field == "stdin"
    asyncio.run(source.aclose())
