/** exec ID -- CMD…: a command in a sandbox, output streamed live, its exit code passed through. */
import type { CommandResult } from "@kiln/core";
import type { Command } from "commander";
import { type CommonOptions, collect, pairs, withCommonOptions, withKiln } from "../context.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import {
  EXIT_INTERRUPTED,
  EXIT_KILLED,
  EXIT_PIPE,
  EXIT_TIMEOUT,
  ExitCode,
  kilnErrorCode,
  stdoutClosed,
  UsageError,
} from "../errors.ts";
import { examples } from "../help.ts";
import { note, printJson } from "../output.ts";
import { terminalSize } from "../terminal.ts";
import { runAttached } from "./shell.ts";

/** No timeout unless --timeout: the longest core accepts (a day). */
const NO_TIMEOUT_MS = 24 * 60 * 60 * 1000;
/** Kept output per stream when streaming (core's ceiling); the live stream is what people read. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

interface ExecFlags extends CommonOptions {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  tag?: string;
  timeout?: number;
  cwd?: string;
  env?: string[];
}

export function registerExec(program: Command): void {
  withCommonOptions(
    program
      .command("exec")
      .description("Run a command in a sandbox; streams its output and exits with its exit code")
      .argument("<id>", "sandbox id or name")
      .argument("<command...>", "the command as an argv, after -- (use -- sh -c '…' for a shell line)")
      .option("-i, --interactive", "forward this process's stdin to the command")
      .option("-t, --tty", "run it on a terminal (with -i: an interactive one; stdin must then be a terminal)")
      .option("-d, --detach", "start it as a background process and print its pid (see kiln ps, kiln logs)")
      .option("--tag <tag>", "with -d: a name to find the process by (kiln logs ID TAG)")
      .option("--timeout <duration>", "kill it after this long (30s, 5m, 1h) and exit 124", parseDuration)
      .option("-w, --cwd <dir>", "working directory (default /workspace)")
      .option("-e, --env <KEY=VALUE>", "an environment variable (repeatable)", collect)
      .showHelpAfterError("(kiln's flags go before ID, the command and its flags after --: kiln exec ID -- CMD ARGS…)")
      .addHelpText(
        "after",
        `${examples(
          "kiln exec box -- ls -la /workspace",
          "kiln exec box -- sh -c 'pip list | grep numpy'",
          "echo hello | kiln exec -i box -- wc -c",
          "kiln exec --timeout 30s box -- python3 train.py",
          "kiln exec -it box -- python3            # an interactive REPL",
          "kiln exec -d --tag web box -- python3 -m http.server 8000",
        )}

Exit code: the command's own; 124 when --timeout ran out; 137 when it was killed (or ran out of memory).
With -t the command's stdout and stderr arrive as one terminal stream (--json does not apply);
with -d kiln exits at once and prints the background process's pid ({ pid, tag } with --json).`,
      ),
  ).action(async (id: string, command: string[], flags: ExecFlags) => {
    const env = pairs(flags.env, "--env");
    if (flags.detach) return detached(id, command, flags, env);
    if (flags.tag !== undefined) throw new UsageError("--tag names a background process: use it with -d");
    if (flags.tty) return onTerminal(id, command, flags, env);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once("SIGINT", onSigint);
    process.once("SIGTERM", onSigint);
    try {
      const result = await withKiln(flags, async (kiln, target) => {
        const sandbox = await kiln.get(id);
        return sandbox.exec(command, {
          timeoutMs: flags.timeout ?? NO_TIMEOUT_MS,
          maxOutputBytes: MAX_OUTPUT_BYTES,
          signal: AbortSignal.any([controller.signal, stdoutClosed.signal]),
          ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
          ...(flags.env ? { env } : {}),
          // A Kiln server takes stdin whole in the request (no live stream through it yet).
          ...(flags.interactive ? { stdin: target.mode === "local" ? process.stdin : await wholeStdin() } : {}),
          ...(flags.json
            ? {}
            : {
                onStdout: (chunk: string) => void process.stdout.write(chunk),
                onStderr: (chunk: string) => void process.stderr.write(chunk),
              }),
        });
      });
      if (stdoutClosed.signal.aborted) throw new ExitCode(EXIT_PIPE);
      if (controller.signal.aborted) throw new ExitCode(EXIT_INTERRUPTED, "interrupted: the command was stopped");
      if (flags.json) printJson(result);
      else if (result.truncated) note(`(output beyond ${MAX_OUTPUT_BYTES / 1024 / 1024} MiB per stream was cut)`);
      const code = exitCodeOf(result);
      if (code !== 0) throw new ExitCode(code, flags.json ? "" : explain(result, flags.timeout));
    } catch (error) {
      if (stdoutClosed.signal.aborted && kilnErrorCode(error) === "ABORTED") throw new ExitCode(EXIT_PIPE);
      if (controller.signal.aborted && kilnErrorCode(error) === "ABORTED") {
        throw new ExitCode(EXIT_INTERRUPTED, "interrupted");
      }
      throw error;
    } finally {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigint);
    }
  });
}

/** exec -d: a background process of the sandbox's agent; it runs on after kiln exits. */
async function detached(id: string, command: string[], flags: ExecFlags, env: Record<string, string>): Promise<void> {
  for (const [set, flag] of [
    [flags.tty, "-t"],
    [flags.interactive, "-i"],
    [flags.timeout !== undefined, "--timeout"],
  ] as const) {
    if (set) throw new UsageError(`${flag} does not go with -d (a background process has no terminal or stdin here)`);
  }
  await withKiln(flags, async (kiln) => {
    const sandbox = await kiln.get(id);
    const started = await sandbox.processes.start(command, {
      ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
      ...(flags.env ? { env } : {}),
      ...(flags.tag === undefined ? {} : { tag: flags.tag }),
    });
    if (flags.json) printJson(started);
    else process.stdout.write(`${started.pid}\n`);
  });
}

/** exec -t: the command on a terminal in the sandbox; with -i this terminal's keys go to it. */
async function onTerminal(id: string, command: string[], flags: ExecFlags, env: Record<string, string>): Promise<void> {
  if (flags.json) throw new UsageError("--json does not go with -t: a terminal has one output stream, not a result");
  if (flags.interactive && !process.stdin.isTTY) {
    throw new UsageError("-it needs stdin to be a terminal, and it is not: drop -t to pipe stdin in (kiln exec -i)");
  }
  const timeout = flags.timeout === undefined ? undefined : AbortSignal.timeout(flags.timeout);
  const code = await withKiln(flags, async (kiln) => {
    const sandbox = await kiln.get(id);
    const pty = await sandbox.pty.create({
      ...terminalSize(),
      command,
      ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
      ...(flags.env ? { env } : {}),
    });
    return runAttached(pty, flags.interactive === true, timeout);
  });
  if (timeout?.aborted) {
    throw new ExitCode(
      EXIT_TIMEOUT,
      `the command ran longer than ${formatDuration(flags.timeout ?? 0)} and was killed`,
    );
  }
  if (code !== 0) throw new ExitCode(code);
}

export function exitCodeOf(result: CommandResult): number {
  if (result.status === "timeout") return EXIT_TIMEOUT;
  if (result.status === "oom" || result.status === "killed") return EXIT_KILLED;
  return result.exitCode;
}

/** Only the cases the command itself cannot have said: a plain non-zero exit prints nothing. */
function explain(result: CommandResult, timeoutMs: number | undefined): string {
  if (result.status === "timeout")
    return `the command ran longer than ${formatDuration(timeoutMs ?? NO_TIMEOUT_MS)} and was killed`;
  if (result.status === "oom")
    return "the command ran out of memory and was killed (create the sandbox with more --memory)";
  if (result.status === "killed") return "the command was killed";
  return "";
}

/** The most stdin `exec -i` sends to a Kiln server (its exec route takes stdin as one string). */
const MAX_REMOTE_STDIN_BYTES = 8 * 1024 * 1024;

async function wholeStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REMOTE_STDIN_BYTES) {
      throw new Error(
        `stdin is over ${MAX_REMOTE_STDIN_BYTES / 1024 / 1024} MiB, more than exec -i sends to a Kiln server: copy it in with kiln cp`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
