/**
 * The adapter's own defaults, each with the reason for its value. The tools' shared defaults
 * (time limit, output size, images per call, list entries) are core's.
 */

/** Where relative paths resolve inside a Kiln sandbox (core's working directory). */
export const WORKDIR = "/workspace";

/** Prefix of the sandbox names derived from LangGraph thread ids. */
export const DEFAULT_NAME_PREFIX = "lc-";

/** Labels on every sandbox the `{ kiln }` tools create, so `kiln.list({ labels })` finds them. */
export const ADAPTER_LABEL = { "kiln-adapter": "langchain" } as const;

/**
 * read_file refuses larger files: the model reads at most maxOutputChars of them anyway, and a
 * whole multi-gigabyte file should not pass through the host's memory to get there.
 */
export const MAX_READ_FILE_BYTES = 8 * 1024 * 1024;
