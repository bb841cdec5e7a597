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
