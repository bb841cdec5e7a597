/**
 * Runs the program and turns every outcome into an exit code: 0 success, 1 failure (one line on
 * stderr, never a stack trace), 2 usage error; commands like exec choose their own through ExitCode.
 */
import { CommanderError } from "commander";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitCode, kilnErrorCode, UsageError } from "./errors.ts";
import { err } from "./output.ts";
import { createProgram } from "./program.ts";

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (error) {
    return report(error);
  }
}

export function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander printed its message already (help, version, or the usage error).
    if (error.exitCode === 0) return EXIT_OK;
    if (error.code === "commander.help" || error.code === "commander.helpDisplayed") return EXIT_USAGE;
    process.stderr.write(err.dim("Run kiln --help, or kiln <command> --help, for usage.\n"));
    return EXIT_USAGE;
  }
  if (error instanceof ExitCode) {
    if (error.message) fail(error.message);
    return error.code;
  }
  if (error instanceof UsageError) {
    fail(error.message);
    return EXIT_USAGE;
  }
  let message = error instanceof Error ? error.message : String(error);
  // Core's advice names its API; on the command line the same step is a command.
  if (kilnErrorCode(error) === "SANDBOX_NOT_RUNNING") {
    message = message.replace(/call sandbox\.start\(\) first/, "start it with kiln start first");
  }
  fail(message);
  if (process.env.KILN_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return EXIT_FAILURE;
}

/** One line: the message's lines joined, so scripts can read it and people see it whole. */
function fail(message: string): void {
  const line = message
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
  process.stderr.write(`${err.red("kiln:")} ${line}\n`);
}
