/**
 * How a command ends. Every failure reaches main() as one of these (or a KilnError / any Error),
 * and main() turns it into one line on stderr and an exit code: 0 success, 1 failure, 2 usage.
 */

/** The user called the command wrongly: exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** End with this exit code; `message`, when set, is printed as the one error line. */
export class ExitCode extends Error {
  override readonly name = "ExitCode";
  readonly code: number;
  constructor(code: number, message = "") {
    super(message);
    this.code = code;
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** As coreutils' timeout(1). */
export const EXIT_TIMEOUT = 124;
/** 128 + SIGKILL, as a shell reports a killed process. */
export const EXIT_KILLED = 137;
/** 128 + SIGINT. */
export const EXIT_INTERRUPTED = 130;

/**
 * The `code` of a KilnError from any copy of @kiln/core (core marks them with
 * Symbol.for("kiln.error") for exactly this), else undefined. Checked without importing core, so
 * --help, --version, completion and usage errors never pay core's start-up (about 1 s on a busy machine).
 */
export function kilnErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  if ((error as Record<symbol, unknown>)[Symbol.for("kiln.error")] !== true) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/** 128 + SIGPIPE, as a shell reports a writer whose reader went away (kiln exec … | head -1). */
export const EXIT_PIPE = 141;

/**
 * Aborted when stdout's reader goes away (EPIPE). bin.ts exits 141 at once unless a command
 * listens (exec does: it stops the command in the sandbox first).
 */
export const stdoutClosed = new AbortController();
