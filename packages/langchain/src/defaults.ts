/**
 * Every default of the adapter in one place, each with the reason for its value.
 */

/** Where relative paths resolve inside a Kiln sandbox (core's working directory). */
export const WORKDIR = "/workspace";

/** A minute covers a pandas job or a package install; runaway code should not stall the agent loop longer. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Each stream (stdout, stderr, traceback, file text) is cut to this many characters before the model
 * sees it: about 3k tokens, enough to read a table or a traceback without flooding the context window.
 */
export const DEFAULT_MAX_OUTPUT_CHARS = 12_000;

/** Images per tool result: a cell that draws twenty figures should not put twenty images in the context. */
export const MAX_IMAGES_PER_RESULT = 4;

/** Entries shown by list_files; a directory of node_modules says nothing more after this many. */
export const MAX_LIST_ENTRIES = 500;

/** Prefix of the sandbox names derived from LangGraph thread ids. */
export const DEFAULT_NAME_PREFIX = "lc-";

/** Labels on every sandbox the `{ kiln }` tools create, so `kiln.list({ labels })` finds them. */
export const ADAPTER_LABEL = { "kiln-adapter": "langchain" } as const;

/**
 * read_file refuses larger files: the model reads at most maxOutputChars of them anyway, and a
 * whole multi-gigabyte file should not pass through the host's memory to get there.
 */
export const MAX_READ_FILE_BYTES = 8 * 1024 * 1024;
