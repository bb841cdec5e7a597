"""Keeping user code away from the agent: the agent runs under another uid than the code it runs.

The container starts as uid 0, gid 1000, with one capability, CAP_SETUID (runtime-image.ts and
host-config.ts). Once its socket is bound (in /run/kiln, root's 0700 tmpfs, so user code can
neither connect to nor replace it), the agent switches to real uid 0, effective uid 1000, saved
uid 0 and drops every capability it still holds:

- signals and ptrace from user code (uid 1000) are refused: the kernel compares the sender's
  uid with the agent's real and saved uid (0), and the uid change made the agent non-dumpable,
  so its /proc files are root's;
- its file operations run with fsuid 1000, so the sandbox user's permissions apply and the files
  it creates belong to the sandbox user;
- a child it forks sets all three uids to 1000 before exec, which needs no capability (1000 is the
  effective uid), so user code runs as uid 1000 with no capability, and no-new-privileges (set on
  the container) keeps it that way; the agent signals its children as uid 1000, no CAP_KILL.

Run as any other user (the unit tests run it as uid 1000), nothing changes.
"""

import os

from .util import log

SANDBOX_UID = 1000
SANDBOX_GID = 1000


def drop_privileges():
    """Become (real 0, effective SANDBOX_UID, saved 0) with no capabilities; the uid children
    must switch to, or None when the agent was not started as root."""
    if os.geteuid() != 0:
        return None
    if os.getresgid() != (SANDBOX_GID,) * 3:
        os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)  # needs CAP_SETGID: started as 0:0
    os.setresuid(0, SANDBOX_UID, 0)
    drop_capabilities()
    return SANDBOX_UID


def drop_capabilities():
    """Empty the permitted set too (the uid change only emptied the effective one), so the agent
    can never take back CAP_SETUID. Best effort: logged if it cannot be done."""
    try:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

        libc = ctypes.CDLL(None, use_errno=True)
        header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two Data structs
        data = (Data * 2)()
        if libc.capset(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError, ImportError) as exc:
        log(f"could not drop capabilities: {exc}")


def become_sandbox_user(uid):
    """preexec in a child: all uids to `uid` (no capability left), before exec."""
    os.setresuid(uid, uid, uid)
