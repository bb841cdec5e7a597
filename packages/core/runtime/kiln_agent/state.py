"""Interpreter state: saving Python contexts for a snapshot and restoring them at start."""

import os

from .limits import REASON_MAX, SAVE_TIMEOUT
from .util import clip, describe_os_error


STATE_SUFFIX = ".pkl"


def state_file_name(context):
    """`<context>.pkl` for a name of ASCII letters, digits, '_', '-' and '.'; any other name
    (even an empty one) becomes `~<its UTF-8 in hex>.pkl`."""
    if context.isascii() and context.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return context + STATE_SUFFIX
    return "~" + context.encode("utf-8", "surrogatepass").hex() + STATE_SUFFIX


def state_file_context(file_name):
    """The context whose state_file_name() is file_name; ValueError if there is none."""
    stem = file_name[: -len(STATE_SUFFIX)]
    context = bytes.fromhex(stem[1:]).decode("utf-8", "surrogatepass") if stem[:1] == "~" else stem
    if state_file_name(context) != file_name:
        raise ValueError(f"not a state file name: {file_name!r}")
    return context


def clean_state_report(message, key):
    """{key: [names], failed: [{name, reason}], error?} from a kernel's `saved` or `ready`."""
    names = message.get(key)
    failed = message.get("failed")
    report = {
        key: [name for name in names if isinstance(name, str)] if isinstance(names, list) else [],
        "failed": [
            {"name": str(item.get("name")), "reason": clip(str(item.get("reason", "")), REASON_MAX)}
            for item in (failed if isinstance(failed, list) else [])
            if isinstance(item, dict)
        ],
    }
    if message.get("error") is not None:
        report["error"] = clip(str(message["error"]), REASON_MAX)
    return report


def discard(path):
    """Remove a temp file if it is there; nothing to be done if that fails."""
    try:
        os.unlink(path)
    except OSError:
        pass


class StateSave:
    """One `save` a Python kernel is busy with for snapshot_prepare.

    The kernel writes a temp file, renamed into place only if the answer comes in time: a
    snapshot never carries a file the reply did not report as saved."""

    sequence = 0  # kernel-side ids, like RunCode's

    def __init__(self, context, path, on_saved):
        StateSave.sequence += 1
        self.seq = StateSave.sequence
        self.path, self.temp = path, path + ".tmp"
        self.on_saved = on_saved  # None once reported
        self.timer = context.agent.loop.call_later(SAVE_TIMEOUT, self._expire)

    def answered(self, message):
        self.timer.cancel()
        if self.on_saved is None:  # too late: already reported failed
            discard(self.temp)
            return
        report = clean_state_report(message, "saved")
        try:
            if "error" in report:
                discard(self.temp)
            else:
                os.replace(self.temp, self.path)
        except OSError as exc:
            report = {"saved": [], "failed": report["failed"], "error": describe_os_error(exc)}
        self._report(report)

    def abandon(self, error):
        self.timer.cancel()
        discard(self.temp)
        self._report({"saved": [], "failed": [], "error": error})

    def _expire(self):
        # The kernel keeps the context busy until it answers (or dies); the reply does not wait.
        discard(self.temp)
        self._report({"saved": [], "failed": [], "error": f"not saved within {SAVE_TIMEOUT:g} s"})

    def _report(self, report):
        on_saved, self.on_saved = self.on_saved, None
        if on_saved is not None:
            on_saved(report)


class SnapshotPrepare:
    """`snapshot_prepare`: one `ok` once every Python context asked to save has answered."""

    def __init__(self, conn, rid):
        self.conn, self.id = conn, rid
        self.contexts = {}
        self.waiting = 0

    def skip_busy(self, context):
        self.contexts[context.name] = {"saved": [], "failed": [], "busy": True}

    def save(self, context, path):
        def on_saved(report):
            self.contexts[context.name] = report
            self.waiting -= 1
            self.reply_when_done()

        self.waiting += 1
        context.save(path, on_saved)

    def reply_when_done(self):
        if not self.waiting:
            self.conn.reply(self.id, "ok", contexts=self.contexts)
