"""Sandboxes over HTTP: create, get, list, get_or_create, lifecycle, context managers, errors."""

from __future__ import annotations

import secrets
import socket
import time

import pytest
from conftest import LABELS, Server, start_server

import kiln


def test_health_answers_without_a_key(client: kiln.Kiln) -> None:
    health = client.health()
    assert health.status == "ok"
    assert health.engine == "ok"


def test_settings_come_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_API_KEY", server.admin_key)
    with kiln.Kiln() as k:
        assert k.url == server.url
        assert isinstance(k.list(), list)


def test_a_missing_key_is_an_invalid_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_API_KEY", raising=False)
    with pytest.raises(kiln.InvalidArgumentError) as info:
        kiln.Kiln(url="http://127.0.0.1:1")
    assert info.value.field == "api_key"
    with pytest.raises(kiln.InvalidArgumentError):
        kiln.Kiln(url="ftp://example.invalid", api_key="k")


def test_create_get_list_and_the_context_manager_deletes(client: kiln.Kiln) -> None:
    name = f"py-{secrets.token_hex(4)}"
    with client.create(
        name=name, language="python", labels={**LABELS, "case": name}, resources={"memory_mb": 256}
    ) as sb:
        assert sb.name == name
        info = sb.info()
        assert info.state == "running"
        assert info.language == "python"
        assert info.network == "none"
        assert info.resources["memory_mb"] == 256
        assert info.labels["case"] == name
        assert client.get(name).id == sb.id
        assert client.get(sb.id).name == name
        listed = client.list(labels={"case": name})
        assert [s.id for s in listed] == [sb.id]
        assert client.list(labels={"case": "no-such-" + name}) == []
        sb.delete()  # deleted inside the block: leaving it is still fine
    with pytest.raises(kiln.SandboxNotFoundError) as err:
        client.get(name)
    assert err.value.code == "SANDBOX_NOT_FOUND"
    assert err.value.status == 404


def test_get_or_create_makes_it_once(client: kiln.Kiln) -> None:
    name = f"py-{secrets.token_hex(4)}"
    first = client.get_or_create(name, labels=LABELS, language="javascript")
    try:
        second = client.get_or_create(name, labels=LABELS)
        assert second.id == first.id
        assert second.last_info.language == "javascript"
    finally:
        first.delete()


def test_stop_and_start(client: kiln.Kiln) -> None:
    with client.create(labels=LABELS) as sb:
        sb.files.write("kept.txt", "still here")
        sb.stop()
        assert sb.info().state == "stopped"
        with pytest.raises(kiln.SandboxNotRunningError) as err:
            sb.exec("true")
        assert err.value.status == 409
        assert isinstance(err.value, kiln.ConflictError)
        sb.start()
        assert sb.last_info.state == "running"
        assert sb.files.read_text("kept.txt") == "still here"


def test_a_bad_argument_names_its_field(client: kiln.Kiln) -> None:
    with pytest.raises(kiln.InvalidArgumentError) as err:
        client.create(labels=LABELS, resources={"memory_mb": 1})
    assert err.value.status == 400
    assert err.value.code == "INVALID_ARGUMENT"
    assert err.value.field == "resources.memoryMb"


def test_a_wrong_key_is_unauthorized(server: Server) -> None:
    with kiln.Kiln(url=server.url, api_key="kiln_wrong_" + secrets.token_hex(8)) as k:
        with pytest.raises(kiln.UnauthorizedError) as err:
            k.list()
    assert err.value.code == "UNAUTHORIZED"
    assert err.value.status == 401
    assert isinstance(err.value, kiln.KilnError)


def test_no_server_is_server_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with kiln.Kiln(url=f"http://127.0.0.1:{port}", api_key="kiln_x") as k:
        with pytest.raises(kiln.ServerUnavailableError) as err:
            k.list()
    assert err.value.code == "SERVER_UNAVAILABLE"
    assert f"127.0.0.1:{port}" in str(err.value)


def test_failed_authentications_are_rate_limited_with_retry_after() -> None:
    # A server of its own: its limiter (30 failures a minute per address) must not lock out the others.
    srv = start_server()
    try:
        with kiln.Kiln(url=srv.url, api_key="kiln_wrong_" + secrets.token_hex(8)) as k:
            limited = None
            for _ in range(40):
                try:
                    k.list()
                except kiln.RateLimitedError as err:
                    limited = err
                    break
                except kiln.UnauthorizedError:
                    continue
        assert limited is not None, "40 failed authentications were never limited"
        assert limited.code == "RATE_LIMITED"
        assert limited.status == 429
        assert limited.retry_after is not None and 0 < limited.retry_after <= 60
    finally:
        srv.stop()


def test_snapshots(client: kiln.Kiln) -> None:
    snap = f"py-snap-{secrets.token_hex(4)}"
    with client.create(labels=LABELS) as sb:
        sb.files.write("state.txt", "from the snapshot")
        info = sb.snapshot(snap)
        assert info.name == snap
        assert info.size_bytes > 0
    try:
        assert snap in [s.name for s in client.snapshots.list()]
        with client.create(snapshot=snap, labels=LABELS) as restored:
            assert restored.files.read_text("state.txt") == "from the snapshot"
    finally:
        client.snapshots.delete(snap)
    assert snap not in [s.name for s in client.snapshots.list()]
    with pytest.raises(kiln.SnapshotNotFoundError) as err:
        client.snapshots.delete(snap)
    assert err.value.status == 404


def test_volumes(client: kiln.Kiln) -> None:
    vol = f"py-vol-{secrets.token_hex(4)}"
    created = client.volumes.create(vol)
    assert created.name == vol
    try:
        assert vol in [v.name for v in client.volumes.list()]
        with client.create(labels=LABELS, volumes=[{"volume": vol, "mount_path": "/data"}]) as sb:
            assert sb.exec("echo shared > /data/x && cat /data/x").stdout == "shared\n"
    finally:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.volumes.delete(vol)
                break
            except kiln.ConflictError:  # the sandbox's container may still be going away
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    assert vol not in [v.name for v in client.volumes.list()]
    with pytest.raises(kiln.VolumeNotFoundError):
        client.volumes.delete(vol)
