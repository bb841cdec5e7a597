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
