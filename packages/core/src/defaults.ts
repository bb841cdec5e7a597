/**
 * The runtime's defaults, each with the reason for its value. The model-facing tools' defaults
 * are in tools/tool-defaults.ts, each adapter's own in its package's defaults.ts.
 */

/** Where relative paths resolve and commands start; owned by the sandbox user. */
export const WORKDIR = "/workspace";

/** The unprivileged user every sandbox process runs as (never uid 0). */
export const SANDBOX_USER = "1000:1000";

/**
 * The container's own user: the agent starts as uid 0 (gid 1000) with CAP_SETUID only, binds its
 * socket in root's /run/kiln, then keeps real uid 0 and works as effective uid 1000 with no
 * capability; everything it starts runs as SANDBOX_USER with none. User code can then neither
 * signal, ptrace nor impersonate the agent (runtime/kiln_agent/privileges.py, docs/security.md).
 */
export const CONTAINER_USER = "0:1000";

/** A minute covers a package install or a test run; runaway code should not hold a sandbox longer. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

/** Same budget for a code cell as for a command. */
export const DEFAULT_RUN_CODE_TIMEOUT_MS = 60_000;

/** 1 MiB per stream is far more than a model can read, and bounds Kiln's memory per call. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** Upper bound accepted for maxOutputBytes: output is held in memory on the host. */
export const MAX_OUTPUT_BYTES_LIMIT = 64 * 1024 * 1024;

/** Resource limits are always on. 1 GiB runs pandas on a mid-size CSV; 1 CPU keeps 2-core hosts responsive. */
export const DEFAULT_RESOURCES = {
  cpus: 1,
  memoryMb: 1024,
  /** Enough for a build with parallel workers; stops a fork bomb long before the host notices. */
  pids: 512,
} as const;

/** Open files per process inside a sandbox. */
export const DEFAULT_NOFILE = 4096;

/** Largest single file a sandbox process may write (RLIMIT_FSIZE), 4 GiB. */
export const DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024;

/** /tmp is a tmpfs (counted against the memory limit, never on the host disk). */
export const DEFAULT_TMPFS_MB = 512;

/** Grace between SIGTERM and SIGKILL when stopping a sandbox. */
export const STOP_TIMEOUT_MS = 2_000;

/**
 * Deleting a sandbox whose agent this process is connected to: the agent is asked to end itself
 * first (the container then stops without the engine killing it, which is cheaper). How long it
 * may take to acknowledge, and then its container to stop, before the engine kills it instead.
 */
export const DELETE_EXIT_ACK_MS = 1_000;
export const DELETE_EXIT_WAIT_MS = 2_000;

/** How long a new sandbox's agent may take to start listening before we report it. */
export const AGENT_READY_TIMEOUT_MS = 15_000;

/**
 * Longest an agent may stay silent on a call (files.*, hello, ping, ...) before its connection
 * is judged dead and the call fails with AgentUnavailableError: a frozen (SIGSTOPped, paused)
 * agent never hangs a caller. Generous, since the agent serves everything on one thread.
 * exec and runCode have their own deadline (timeoutMs + HOST_TIMEOUT_SLACK_MS).
 */
export const AGENT_CALL_TIMEOUT_MS = 15_000;

/** Extra time the host waits past timeoutMs before it gives up on the agent answering. */
export const HOST_TIMEOUT_SLACK_MS = 5_000;

/**
 * Most bytes `files.read()` returns (the whole file sits in the host's memory): 64 MiB. A bigger
 * file is refused with SandboxFileError (code FILE_ERROR, errno EFBIG) naming its size and the
 * limit, unless `truncate: true` asks for its first `maxBytes` bytes. Pseudo-files that never
 * end (/proc, /sys) stop at the limit.
 */
export const DEFAULT_MAX_READ_BYTES = 64 * 1024 * 1024;

/** Upper bound accepted for `files.read`'s maxBytes: one Buffer on the host. */
export const MAX_READ_BYTES_LIMIT = 1024 * 1024 * 1024;

/** Most bytes one `files.download()` writes to the host's disk (all files together): 1 GiB. */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024;

/**
 * Most bytes of results (display() outputs, figures, the final value; as encoded JSON) one
 * runCode execution returns: 16 MiB. Later results are dropped and the Execution says
 * `truncated: true`. stdout and stderr are bounded separately (DEFAULT_MAX_OUTPUT_BYTES each).
 */
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024;

/**
 * Writes into a sandbox move in chunks of this size (`fs_write` frames); the agent streams reads
 * back in 256 KiB chunks (runtime/PROTOCOL.md). Large files stream, never buffered whole.
 */
export const FILE_CHUNK_BYTES = 1024 * 1024;

/**
 * An unclaimed warm-pool member stops itself once no client has been connected to it for this
 * long: its owner process is gone (crashed or exited without close()), so it never keeps CPU
 * and memory in use until some Kiln sweeps it. The owner keeps a connection open to each member.
 */
export const POOL_ORPHAN_STOP_MS = 30_000;

/**
 * After a claim, the pool's own work on the engine (writing the claimed sandbox's record files,
 * creating its replacement) waits this long, so that the new sandbox's first calls do not queue
 * behind a container create on the engine. Measured on 2 cores: the first runCode after a warm
 * create took 7 ms in-process and 15 ms through the server with the refill beside it, 3 and 7
 * without (bench/results/2026-12-02-claim-quiet.md). Claims within the window share it; a claim
 * that finds the pool empty ends it (the refill is needed now).
 */
export const POOL_CLAIM_QUIET_MS = 150;

/**
 * Pauses before each new try of a claimed sandbox's record-file write that failed (an engine
 * hiccup): without its record another process cannot find the sandbox, and once its claimer has
 * exited the sweeper reclaims it as an orphan. After the last, the failure is reported.
 */
export const POOL_RECORD_RETRY_MS: readonly number[] = [100, 500, 2_000];

/** The sweeper runs this often in every Kiln process (orphans, auto-stop, auto-delete). */
export const SWEEP_INTERVAL_MS = 30_000;

/**
 * Disk cap of every sandbox: 4 GiB holds a venv with torch and a few datasets, and keeps one
 * sandbox from filling the host. Where the engine's storage has quotas (setup.sh's btrfs data
 * root with simple quotas, overlay2 on XFS with pquota) it caps the writable layer (on btrfs each
 * inode is metadata charged to the same cap, about 2,800 empty files per MiB); elsewhere (overlay2
 * on ext4) it is the size of the sandbox's loop-mounted ext4 disk (engine/docker/disks.ts), whose
 * inodes are bounded too (one per 16 KiB: 262,144 at 4 GiB).
 */
export const DEFAULT_DISK_MB = 4096;

/** Highest pids limit accepted: Linux's default pid_max; no sandbox can hold more processes than a host. */
export const MAX_PIDS = 32_768;

/** The first sweep runs this soon after a Kiln starts working, so short scripts reclaim orphans too. */
export const FIRST_SWEEP_DELAY_MS = 1_000;

/** A preview URL's life unless previewUrl() says otherwise: long enough to click around an app. */
export const DEFAULT_PREVIEW_EXPIRES_MS = 60 * 60 * 1000;
/** The longest a preview URL may live (a leaked one should not work for ever). */
export const MAX_PREVIEW_EXPIRES_MS = 30 * 24 * 60 * 60 * 1000;
