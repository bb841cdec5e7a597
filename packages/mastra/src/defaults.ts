/**
 * The adapter's own defaults, each with the reason for its value. Those every adapter's tools
 * share (time limit, output size, read and image limits, idle timeout) are @kiln/core's (`@kiln/core/tools`).
 */

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
