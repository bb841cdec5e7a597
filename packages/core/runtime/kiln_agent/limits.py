"""Sizes, time limits and fixed names of the agent (PROTOCOL.md states the ones clients see)."""

VERSION = "1"

MAX_HEADER = 1 << 20  # frame limits, both directions
MAX_BODY = 4 << 20  # what the agent sends (the host refuses more)
MAX_REQUEST_BODY = 32 << 20  # what the agent takes: a big cell, argv or env travels in the body
CONGESTED = 4 << 20  # unsent bytes above which a connection's producers pause
STDIN_BACKLOG_MAX = 4 << 20  # unwritten stdin bytes above which a connection is not read
RECV_SIZE = 256 << 10
PIPE_READ_SIZE = 64 << 10
FILE_CHUNK = 256 << 10  # fs_read `data` frames
ENTRY_BATCH = 256 << 10  # encoded FileEntry bytes per fs_list / fs_walk frame
DRAIN_LIMIT = 4 << 20  # most bytes taken from one pipe when draining it regardless of congestion
KERNEL_LINE_MAX = 16 << 20  # longest kernel -> agent line; longer ones are dropped
ERROR_VALUE_MAX = 16 << 10  # characters of a kernel error's value / traceback passed on
ERROR_TRACEBACK_MAX = 32 << 10
STARTUP_TAIL_MAX = 4 << 10  # kernel output kept to explain a failed start
REASON_MAX = 4 << 10  # characters of why a variable was not saved or restored

EXIT_DRAIN_GRACE = 1.0  # seconds to wait for exec pipes to close once the group is killed
INTERRUPT_GRACE = 2.0  # seconds from SIGINT to SIGKILL for a kernel that must stop
KERNEL_START_TIMEOUT = 30.0  # also bounds restoring a context's saved state
SAVE_TIMEOUT = 30.0  # seconds a kernel gets to save its state for snapshot_prepare
WARM_IDLE = 0.1  # seconds without a frame (and no command running) before the default kernel starts
WARM_LATEST = 2.0  # seconds after the agent's start by which the default kernel starts regardless

LANGUAGES = ("python", "javascript", "typescript")
# Requests that name their target in `target`, carry id 0 and never get a reply.
UNANSWERED = ("stdin", "stdin_end", "cancel", "pty_input", "port_data", "port_end", "port_pause", "port_resume")
OOM_COUNTER_FILES = (
    "/sys/fs/cgroup/memory.events",  # cgroup v2
    "/sys/fs/cgroup/memory/memory.oom_control",  # cgroup v1
)

# Terminals, background processes, port forwarding (pty.py, processes.py, port_forward.py).
PTY_SCROLLBACK = 1 << 20  # bytes of a PTY session's output kept for replay (re-attach)
PROCESS_LOG_MAX = 1 << 20  # bytes of each stream of a background process kept
FOLLOW_CHUNK = 256 << 10  # largest body of a `data`/`stdout`/`stderr` frame sent to a follower
PTY_INPUT_MAX = 4 << 20  # unwritten PTY input above which more input is dropped
PORT_INPUT_MAX = 4 << 20  # unwritten bytes towards a forwarded port above which the connection pauses
MAX_TERMINALS = 64  # running PTY sessions per sandbox (each keeps up to PTY_SCROLLBACK in the agent)
MAX_PROCESSES = 256  # running background processes per sandbox (each keeps 2 x PROCESS_LOG_MAX)
EXITED_KEPT = 64  # ended PTY sessions and background processes remembered (oldest forgotten first)
TERM_GRACE = 1.0  # seconds between SIGTERM and SIGKILL for processes and terminals at shutdown
FORWARD_READ_SIZE = 64 << 10  # per `data` frame of a forwarded socket: 256 KiB was no faster, and small frames keep keystrokes on the same connection prompt
