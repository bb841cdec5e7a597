/**
 * Defaults of the model-facing tools every adapter offers, each with the reason for its value.
 */

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

/**
 * Bytes of a text file read_file moves out of the sandbox per output character shown: UTF-8
 * needs at most 4 bytes a character, so maxOutputChars * 4 bytes always fill the model's view
 * and a multi-gigabyte file never passes through the host's memory.
 */
export const READ_BYTES_PER_CHAR = 4;

/** Largest image read_file attaches: 5 MB is the smallest per-image limit among the big model APIs. */
export const MAX_IMAGE_BYTES = 5 * 1000 * 1000;

/** Bytes looked at to tell text from binary (a NUL or invalid UTF-8 in them means binary). */
export const SNIFF_BYTES = 8192;

/** Label key on every sandbox an adapter's tools make; the value names the adapter ("langchain", "vercel-ai", "mastra"). */
export const ADAPTER_LABEL_KEY = "kiln-adapter";
