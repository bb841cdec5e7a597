/** shell ID: an interactive terminal in a sandbox (a login shell), sized like this one and resized with it. */
import { constants as osConstants } from "node:os";
import type { Command } from "commander";
import { type CommonOptions, collect, pairs, withCommonOptions, withKiln } from "../context.ts";
import { EXIT_PIPE, ExitCode, stdoutClosed, UsageError } from "../errors.ts";
import { examples } from "../help.ts";
import { attachTerminal, terminalSize } from "../terminal.ts";

interface ShellFlags extends CommonOptions {
  cwd?: string;
  env?: string[];
  shell?: string;
}

export function registerShell(program: Command): void {
  withCommonOptions(
    program
      .command("shell")
      .description("Open an interactive shell in a sandbox (exit or Ctrl-D ends it; exits with the shell's code)")
      .argument("<id>", "sandbox id or name")
      .option("-w, --cwd <dir>", "working directory (default /workspace)")
      .option("-e, --env <KEY=VALUE>", "an environment variable (repeatable)", collect)
      .option("--shell <program>", "the program to run instead of a login shell (bash -l)")
      .addHelpText(
        "after",
        `${examples("kiln shell box", "kiln shell --cwd /tmp -e DEBUG=1 box", "kiln shell --shell 'python3 -q' box")}

Keys go to the sandbox as typed (Ctrl-C interrupts the program there, not kiln); the terminal's
size follows this one. stdin must be a terminal: for a script, use kiln exec -i ID -- sh.
Exit code: the shell's own (exit 3 ends kiln shell with 3); 1 when kiln itself failed.`,
      ),
  ).action(async (id: string, flags: ShellFlags) => {
    const env = pairs(flags.env, "--env");
    if (!process.stdin.isTTY) {
      throw new UsageError(
        "kiln shell needs a terminal, and stdin is not one: run a command with kiln exec ID -- CMD (add -i to pipe stdin in)",
      );
    }
    if (flags.json) throw new UsageError("--json does not apply to kiln shell (an interactive terminal)");
    const code = await withKiln(flags, async (kiln) => {
      const sandbox = await kiln.get(id);
      const pty = await sandbox.pty.create({
        ...terminalSize(),
        ...(flags.shell === undefined ? {} : { command: flags.shell }),
        ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
        ...(flags.env ? { env } : {}),
      });
      return runAttached(pty, true);
    });
    if (code !== 0) throw new ExitCode(code);
  });
}

/**
 * Attaches and passes the program's exit code on. SIGTERM, SIGINT or SIGHUP to kiln (its
 * terminal closed) ends the program in the sandbox too, rather than leaving it running there;
 * kiln then exits 128 + that signal's number.
 */
export async function runAttached(
  pty: Parameters<typeof attachTerminal>[0],
  input: boolean,
  extra?: AbortSignal,
): Promise<number> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    received ??= signal;
    controller.abort();
  };
  // In raw mode Ctrl-C is a byte for the sandbox; a SIGINT comes from kill, or from Ctrl-C when
  // stdin is not forwarded (exec -t): it stops the program like the others.
  const signals: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGINT"];
  for (const s of signals) process.on(s, stop);
  try {
    // stdout's reader went away (kiln exec -t … | head -1): the program is stopped too.
    const stops = [controller.signal, stdoutClosed.signal, ...(extra ? [extra] : [])];
    const code = await attachTerminal(pty, { input, signal: AbortSignal.any(stops) });
    if (stdoutClosed.signal.aborted) return EXIT_PIPE;
    // As a shell reports a child that a signal ended: 128 + its number.
    return received === undefined ? code : 128 + (osConstants.signals[received] ?? 0);
  } finally {
    for (const s of signals) process.off(s, stop);
  }
}
