/**
 * Every default of the adapter in one place, each with the reason for its value.
 */

/** Where relative paths resolve in a Kiln sandbox (core's working directory). */
export const WORKDIR = "/workspace";

/** A minute covers a pandas job or a test run; the model gets a clear note when it is hit. */
export const DEFAULT_TOOL_TIMEOUT_MS = 60_000;

/**
 * Per stream (stdout, stderr, traceback, file text). 12k characters is about 3k tokens: enough
 * to read a table or a traceback, small enough that one chatty call does not flood the context.
 */
export const DEFAULT_MAX_OUTPUT_CHARS = 12_000;

/** Share of a cut stream kept from its start; the rest comes from its end (where errors are). */
export const HEAD_SHARE = 0.6;

/** Images returned by one tool call; more are listed by number but not attached. */
export const MAX_IMAGES_PER_CALL = 8;

/** Entries shown by list_files; a directory with more says how many were left out. */
export const MAX_LIST_ENTRIES = 500;

/** read_file reads at most this many bytes of a text file (the model sees maxOutputChars of them). */
export const MAX_READ_BYTES = 1024 * 1024;

/** Image files above this size are not attached by read_file (providers reject large images). */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

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
