"""Files: every call, directory upload/download, and 100 MB through a process that stays small."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import HERE, LABELS, Server, start_server

import kiln


def test_write_read_list_stat_exists_mkdir_remove(sandbox: kiln.Sandbox) -> None:
    f = sandbox.files
    entry = f.write("dir/a.txt", "héllo")
    assert entry.path == "/workspace/dir/a.txt"
    assert entry.type == "file" and entry.size == len("héllo".encode())
    assert f.read("dir/a.txt") == "héllo".encode()
    assert isinstance(f.read("dir/a.txt"), bytes)
    assert f.read_text("/workspace/dir/a.txt") == "héllo"
    f.write("dir/b.bin", bytes(range(256)))
    assert f.read("dir/b.bin") == bytes(range(256))
    f.write("dir/c.bin", io.BytesIO(b"from a file object"))
    assert f.read_text("dir/c.bin") == "from a file object"
    assert sorted(e.name for e in f.list("dir")) == ["a.txt", "b.bin", "c.bin"]
    assert f.stat("dir").type == "directory"
    assert f.exists("dir/a.txt") and not f.exists("dir/nope")
    made = f.mkdir("dir/sub/deeper")
    assert made.type == "directory" and made.path == "/workspace/dir/sub/deeper"
    f.remove("dir/a.txt")
    assert not f.exists("dir/a.txt")
    with pytest.raises(kiln.KilnError):
        f.remove("dir")  # not empty, not recursive
    f.remove("dir", recursive=True)
    assert not f.exists("dir")


def test_a_missing_file_is_file_not_found(sandbox: kiln.Sandbox) -> None:
    with pytest.raises(kiln.FileNotFoundError) as err:
        sandbox.files.read("no/such/file")
    assert err.value.code == "FILE_NOT_FOUND" and err.value.status == 404
    assert isinstance(err.value, builtins.FileNotFoundError)  # `except FileNotFoundError` catches it too
    with pytest.raises(kiln.FileError) as err2:
        sandbox.files.read("/workspace")  # a directory
    assert err2.value.status == 400


def test_upload_and_download_a_directory(sandbox: kiln.Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "nested" / "deep").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "nested" / "n.bin").write_bytes(os.urandom(3000))
    (src / "nested" / "deep" / "d.txt").write_text("deep")
    sandbox.files.upload(str(src), "tree")
    assert sandbox.files.read_text("tree/nested/deep/d.txt") == "deep"
    sandbox.exec("ln -s /etc/passwd /workspace/tree/link")
    dst = tmp_path / "dst"
    sandbox.files.download("tree", str(dst))
    for rel in ("top.txt", "nested/n.bin", "nested/deep/d.txt"):
        assert (dst / rel).read_bytes() == (src / rel).read_bytes()
    assert not (dst / "link").exists()  # links are not followed out of the sandbox
    one = tmp_path / "one.txt"
    sandbox.files.download("tree/top.txt", str(one))
    assert one.read_text() == "top"
    with pytest.raises(kiln.FileNotFoundError):
        sandbox.files.download("tree/missing", str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()
    sandbox.files.remove("tree", recursive=True)


ROUND_TRIP = textwrap.dedent(
    """
    import json, resource, sys, time
    sys.path.insert(0, sys.argv[1])
    import kiln
    url, key, sandbox_id, local, back = sys.argv[2:7]
    sb = kiln.Kiln(url=url, api_key=key).get(sandbox_id)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic(); sb.files.upload(local, "big.bin"); up = time.monotonic() - t
    size = sb.files.stat("big.bin").size
    t = time.monotonic(); sb.files.download("big.bin", back); down = time.monotonic() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "peak_kb": peak, "size": size, "up_s": up, "down_s": down}))
    """
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_100_mb_round_trip_never_holds_the_file(server: Server, sandbox: kiln.Sandbox, tmp_path: Path) -> None:
    size = 100 * 1024 * 1024
    local = tmp_path / "big.bin"
    with open(local, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(100):
            f.write(block[i:] + block[:i])
    back = tmp_path / "back.bin"
    # Its own Python process, so its peak RSS is the SDK's alone.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            ROUND_TRIP,
            str(HERE.parent / "src"),
            server.url,
            server.admin_key,
            sandbox.id,
            str(local),
            str(back),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    stats = json.loads(out.stdout)
    print("100 MB round trip:", stats)
    assert stats["size"] == size
    assert back.stat().st_size == size
    assert _sha256(back) == _sha256(local)
    # The file is 100 MiB; the process may grow by a few MiB of buffers, never by the file.
    assert stats["peak_kb"] - stats["before_kb"] < 30 * 1024, stats
    assert stats["peak_kb"] * 1024 < size, stats
    sandbox.files.remove("big.bin")


def test_an_upload_over_the_servers_limit_is_payload_too_large(tmp_path: Path) -> None:
    # A server of its own with a 1 MiB limit. It answers 413 before reading the body and closes
    # the connection: the SDK reports that answer, not the broken pipe after it.
    srv = start_server({"KILN_MAX_UPLOAD_MB": "1"})
    try:
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(8 << 20))
        with kiln.Kiln(url=srv.url, api_key=srv.admin_key) as k, k.create(labels=LABELS) as sb:
            with pytest.raises(kiln.PayloadTooLargeError) as err:
                sb.files.upload(str(big), "big.bin")  # declared length: refused before the body
            assert err.value.code == "PAYLOAD_TOO_LARGE" and err.value.status == 413
            with open(big, "rb") as f, pytest.raises(kiln.PayloadTooLargeError):
                sb.files.write("big.bin", f)  # chunked: cut off once past the limit

            async def over_async() -> None:
                async with kiln.AsyncKiln(url=srv.url, api_key=srv.admin_key) as ak:
                    asb = await ak.get(sb.id)
                    with pytest.raises(kiln.PayloadTooLargeError):
                        await asb.files.upload(str(big), "big.bin")
                    small = tmp_path / "small.bin"
                    small.write_bytes(b"s" * 1000)
                    await asb.files.upload(str(small), "small.bin")  # under the limit: fine

            asyncio.run(over_async())
            assert sb.files.stat("small.bin").size == 1000
            assert not sb.files.exists("big.bin")
    finally:
        srv.stop()
