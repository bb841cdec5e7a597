/**
 * The adapter's own defaults, each with the reason for its value. Those every adapter's tools
 * share (time limit, output size, list and image limits) are @kiln/core's.
 */

/**
 * A conversation's sandbox is released after this long without a tool call. Ten minutes keeps
 * it warm while a user reads and types; a thread's sandbox comes back (files intact) on the next call.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;

/** Prefix of the names of sandboxes the adapter creates, so `kiln.list()` shows whose they are. */
export const SANDBOX_NAME_PREFIX = "mastra-";

/** Where relative paths resolve and commands start in every Kiln sandbox. */
export const WORKDIR = "/workspace";

/** A background process keeps running this long unless the caller gives a timeout (a dev server, a watcher). */
export const DEFAULT_PROCESS_TIMEOUT_MS = 24 * 60 * 60_000;

/**
 * Output a background process may produce before Kiln stops collecting it. Core keeps the first
 * bytes of a stream and drops the rest; the process handle keeps the newest 1 MiB of what arrives.
 */
export const PROCESS_OUTPUT_BYTES = 16 * 1024 * 1024;

/** read_file reads files up to this size whole; beyond it, only the start (text) is fetched. */
export const MAX_READ_BYTES = 8 * 1024 * 1024;

/** Largest image read_file attaches: 5 MB is the smallest per-image limit among the big model APIs. */
export const MAX_IMAGE_BYTES = 5 * 1000 * 1000;
