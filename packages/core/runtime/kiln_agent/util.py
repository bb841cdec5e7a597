"""Small helpers: logging, OS errors, clipping text."""

import errno
import json
import os
import signal
import sys


def log(message):
    sys.stderr.write(f"kiln-agent: {message}\n")
    sys.stderr.flush()


def log_exception(what):
    import traceback

    log(f"{what}:\n{traceback.format_exc()}")


def errno_name(exc):
    return errno.errorcode.get(exc.errno, "EIO") if exc.errno else "EIO"


def describe_os_error(exc):
    if exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return exc.strerror or str(exc)


def close_fds(*fds):
    for fd in fds:
        if fd is not None:
            os.close(fd)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def open_oom_score():
    """(a descriptor of this process's /proc/self/oom_score_adj open for writing, its current
    value as bytes), or (None, None) where it cannot be opened or read (spawn then raises each
    child's score in the child)."""
    try:
        with open("/proc/self/oom_score_adj", "rb") as f:
            score = f.read().strip()
        int(score)
        return os.open("/proc/self/oom_score_adj", os.O_WRONLY), score
    except (OSError, ValueError):
        return None, None


def raise_oom_score():
    """preexec_fn: make the child, not the agent, the OOM killer's first choice."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def clip(text, limit):
    return text if len(text) <= limit else text[:limit] + "\n[truncated]"


def clip_tail(text, limit):
    """Keep the end of a traceback, where the error is."""
    return text if len(text) <= limit else "[truncated]\n" + text[-limit:]


def encoded_size(value):
    return len(json.dumps(value))



def describe_returncode(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
