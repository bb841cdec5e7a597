"""The sans-IO core alone (no server): what both clients share."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import kiln
from kiln import _protocol as p


def _events(*events: Dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_sse_events_split_anywhere_arrive_whole_and_in_order(size: int) -> None:
    seen: List[Any] = []
    handler = p._stream_handler(
        "result", kiln.CommandResult.from_json, lambda s: seen.append(("out", s)), lambda s: seen.append(("err", s))
    )
    receiver = p.SSEReceiver(handler)
    final = {"exitCode": 0, "stdout": "é\n", "stderr": "x", "status": "ok", "truncated": False, "durationMs": 5}
    stream = b": comment\n\n" + _events(
        {"type": "stdout", "data": "é\n"}, {"type": "stderr", "data": "x"}, {"type": "result", "result": final}
    )
    for i in range(0, len(stream), size):
        receiver.feed(stream[i : i + size])
    result = receiver.finish()
    assert seen == [("out", "é\n"), ("err", "x")]
    assert result == kiln.CommandResult(0, "é\n", "x", "ok", False, 5)


def test_an_error_event_raises_its_class() -> None:
    receiver = p.SSEReceiver(lambda e: None)
    with pytest.raises(kiln.SandboxNotRunningError) as err:
        receiver.feed(_events({"type": "error", "error": {"code": "SANDBOX_NOT_RUNNING", "message": "stopped"}}))
    assert err.value.code == "SANDBOX_NOT_RUNNING" and str(err.value) == "stopped"


def test_a_stream_without_its_final_event_is_an_error() -> None:
    receiver = p.SSEReceiver(lambda e: None)
    receiver.feed(_events({"type": "stdout", "data": "partial"}))
    with pytest.raises(kiln.ServerUnavailableError):
        receiver.finish()


def test_error_bodies_and_bare_statuses() -> None:
    body = json.dumps({"error": {"code": "INVALID_ARGUMENT", "message": "bad", "field": "timeoutMs"}}).encode()
    err = p.error_from_response(400, body)
    assert type(err) is kiln.InvalidArgumentError
    assert (err.code, err.status, err.field, err.message) == ("INVALID_ARGUMENT", 400, "timeoutMs", "bad")
    limited = p.error_from_response(429, b"<html>busy</html>", retry_after=12.0)
    assert type(limited) is kiln.RateLimitedError and limited.retry_after == 12.0 and "busy" in limited.message
    newer = p.error_from_response(418, json.dumps({"error": {"code": "TEAPOT", "message": "m"}}).encode())
    assert type(newer) is kiln.KilnError and newer.code == "TEAPOT"
    assert isinstance(p.error_from_response(404, b""), kiln.NotFoundError)


def test_create_options_become_the_api_names_but_user_keys_stay() -> None:
    body = p.create_body(
        {
            "name": "n",
            "labels": {"my_label": "v"},
            "env": {"MY_VAR": "1"},
            "resources": {"memory_mb": 256, "cpus": 0.5},
            "volumes": [{"volume": "v", "mount_path": "/data", "read_only": True}],
            "auto_stop_ms": 60_000,
            "image": None,
        }
    )
    assert body == {
        "name": "n",
        "labels": {"my_label": "v"},
        "env": {"MY_VAR": "1"},
        "resources": {"memoryMb": 256, "cpus": 0.5},
        "volumes": [{"volume": "v", "mountPath": "/data", "readOnly": True}],
        "autoStopMs": 60_000,
    }


def test_get_or_create_is_one_operation_for_both_clients() -> None:
    op = p.get_or_create("dev", language="python")
    first = next(op)
    assert (first.method, first.path) == ("GET", "/v1/sandboxes/dev")
    second = op.throw(kiln.SandboxNotFoundError("none", code="SANDBOX_NOT_FOUND", status=404))
    assert (second.method, second.path, second.json) == ("POST", "/v1/sandboxes", {"language": "python", "name": "dev"})
    third = op.throw(kiln.ConflictError("taken", code="CONFLICT", status=409))  # made by someone else meanwhile
    assert (third.method, third.path) == ("GET", "/v1/sandboxes/dev")


def test_execution_renders_in_jupyter() -> None:
    e = kiln.Execution(
        results=[kiln.Result(is_main_result=False, png="iVBORw0KGgo="), kiln.Result(is_main_result=True, text="42")],
        stdout="<b>out</b>\n",
        stderr="",
        status="error",
        truncated=False,
        duration_ms=1,
        error=kiln.ExecutionError("ValueError", "v", "Traceback: ValueError: v"),
    )
    bundle = e._repr_mimebundle_()
    assert '<img src="data:image/png;base64,iVBORw0KGgo="/>' in bundle["text/html"]
    assert "&lt;b&gt;out&lt;/b&gt;" in bundle["text/html"]  # output is escaped, never markup
    assert "Traceback: ValueError: v" in bundle["text/plain"] and "42" in bundle["text/plain"]
    assert e.text == "42"
    assert kiln.Result(text="t", html="<i>h</i>")._repr_mimebundle_() == {"text/plain": "t", "text/html": "<i>h</i>"}
