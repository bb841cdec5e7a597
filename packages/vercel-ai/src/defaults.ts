/**
 * The adapter's own defaults, each with the reason for its value. The tools' shared defaults
 * (timeout, output size, read and image limits, idle timeout) are core's (`@kiln/core/tools`).
 */

/**
 * Prefix of the sandbox names the tools make (core's ConversationSandboxes): `"ai-" + key` for a
 * conversation key, `"ai-own-<hex>"` for a tool set's own sandbox. Idle and lifecycle defaults are core's.
 */
export const KEY_PREFIX = "ai-";

/**
 * SandboxSession.run: long enough for an install or a test suite. Callers stop a command
 * earlier with abortSignal; the interface has no timeout option of its own.
 */
export const DEFAULT_SESSION_RUN_TIMEOUT_MS = 10 * 60_000;

/** SandboxSession.spawn: a spawned process is meant to run long; core's largest timeout (one day). */
export const DEFAULT_SESSION_SPAWN_TIMEOUT_MS = 24 * 60 * 60_000;

/**
 * Output a spawned process may produce per stream. Core keeps a copy of the output for its
 * result while it streams it to us, so this bounds host memory per process.
 */
export const DEFAULT_SPAWN_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Where relative paths resolve in a Kiln sandbox (core's working directory). */
export const WORKDIR = "/workspace";
