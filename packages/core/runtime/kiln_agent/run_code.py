"""`run_code`: one cell queued on, then run by, a context; its results and errors cleaned."""

import json
import signal
import sys
import time

from .limits import ERROR_TRACEBACK_MAX, ERROR_VALUE_MAX, MAX_HEADER
from .request import OutputRequest
from .util import clip, clip_tail, describe_returncode, encoded_size


RESULT_TEXT_KEYS = ("text", "html", "markdown", "png", "jpeg", "svg")


def clean_result(raw):
    """The known representations of a kernel result, each checked, as PROTOCOL.md lists them."""
    result = {key: raw[key] for key in RESULT_TEXT_KEYS if isinstance(raw.get(key), str)}
    if raw.get("json") is not None:
        try:
            json.dumps(raw["json"], allow_nan=False)
            result["json"] = raw["json"]
        except (ValueError, RecursionError):
            pass
    result["isMainResult"] = raw.get("isMainResult") is True
    return result


def fit_result(result):
    """Drop a result's largest representations (cut text last) until its header fits a frame.

    Returns True if anything was dropped."""
    budget = MAX_HEADER - 256  # room for type, id and the JSON around `result`
    shrunk = False
    while encoded_size(result) > budget:
        shrunk = True
        droppable = [key for key in result if key not in ("text", "isMainResult")]
        if droppable:
            del result[max(droppable, key=lambda key: encoded_size(result[key]))]
        else:
            text = result.get("text", "")
            result["text"] = text[: len(text) // 2] + "\n[truncated]"
    return shrunk


def clean_error(error):
    """A kernel's error object as {name, value, traceback} strings of bounded size, or None."""
    if not isinstance(error, dict):
        return None
    traceback = error.get("traceback", "")
    if isinstance(traceback, list):
        traceback = "\n".join(map(str, traceback))
    return {
        "name": clip(str(error.get("name") or "Error"), ERROR_VALUE_MAX),
        "value": clip(str(error.get("value", "")), ERROR_VALUE_MAX),
        "traceback": clip_tail(str(traceback), ERROR_TRACEBACK_MAX),
    }


# What a cell raises for a name it does not know (Python, JavaScript).
UNDEFINED_NAME_ERRORS = ("NameError", "UnboundLocalError", "ReferenceError")


class RunCode(OutputRequest):
    """`run_code`: one request queued on, then run by, a Context."""

    sequence = 0  # kernel-side ids: unique across connections, so stale answers never match

    def __init__(self, agent, conn, rid, context, code, timeout_ms, cap, result_cap=sys.maxsize):
        super().__init__(conn, rid, cap)
        self.result_room = result_cap  # bytes of encoded results still allowed (maxResultBytes)
        RunCode.sequence += 1
        self.seq = RunCode.sequence
        self.agent, self.context, self.code, self.timeout_ms = agent, context, code, timeout_ms
        self.reason = None  # "timeout" or "killed" once the agent interrupted it
        self.started = None
        self.oom_before = None
        self.timer = None
        self.kill_timer = None
        self.restarted_before = False

    def begin(self, kernel):
        self.started = time.monotonic()
        # State lost while the context was idle: this run is the first to find out.
        self.restarted_before, self.context.lost_unreported = self.context.lost_unreported, False
        self.oom_before = self.agent.oom_kills()
        if self.timeout_ms:
            self.timer = self.agent.loop.call_later(
                self.timeout_ms / 1000, lambda: self.context.interrupt(self, "timeout")
            )
        kernel.run(self)

    def cancel(self):
        self.context.interrupt(self, "killed")

    def result(self, raw):
        if self.result_room <= 0:
            self.truncated = True
            return
        result = clean_result(raw)
        if fit_result(result):
            self.truncated = True
        size = encoded_size(result)
        if size > self.result_room:  # over the total: this one and every later one are dropped
            self.result_room = 0
            self.truncated = True
            return
        self.result_room -= size
        self.send("result", result=result)

    def kernel_done(self, error):
        error = clean_error(error)
        if error is None:
            self.context.fresh_after_loss = False
        elif error["name"] in UNDEFINED_NAME_ERRORS and self.context.fresh_after_loss:
            error["value"] += (
                f"\n[the {self.context.label} was restarted since it held these names"
                " (its process died or was killed), so earlier variables, imports and functions are gone]"
            )
        restarted = self.restarted_before
        if self.reason:
            self.finish(self.reason, self.interrupt_error(error, state_kept=True), restarted=restarted)
        else:
            self.finish("error" if error else "ok", error, restarted=restarted)

    def crashed(self, returncode):
        if self.reason:
            status = self.reason
        elif returncode == -signal.SIGKILL and self.agent.oom_rose_since(self.oom_before):
            status = "oom"
        else:
            status = "error"
        value = f"the {self.context.label} died ({describe_returncode(returncode)}); its state was lost"
        self.finish(status, {"name": "ContextCrashed", "value": value, "traceback": ""}, restarted=True)

    def interrupt_error(self, kernel_error, state_kept):
        if self.reason == "timeout":
            name, what = "TimeoutError", f"execution exceeded {self.timeout_ms:g} ms"
        else:
            name, what = "Cancelled", "execution was cancelled"
        if state_kept:
            value = f"{what}; it was interrupted and the context state is kept"
        else:
            value = f"{what} and did not stop when interrupted; the context was restarted and its state lost"
        return {"name": name, "value": value, "traceback": kernel_error["traceback"] if kernel_error else ""}

    def finish(self, status, error, restarted=False):
        for timer in (self.timer, self.kill_timer):
            if timer is not None:
                timer.cancel()
        fields = {
            "status": status,
            "truncated": self.truncated,
            "durationMs": round((time.monotonic() - self.started) * 1000) if self.started else 0,
            "contextRestarted": restarted,
        }
        if error is not None:
            fields["error"] = error
        self.send("done", **fields)
        self.retire()
