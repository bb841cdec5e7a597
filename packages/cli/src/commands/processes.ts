/** ps ID, logs ID PID [-f], kill ID PID: a sandbox's background processes (started with kiln exec -d). */

import { constants as osConstants } from "node:os";
import type { ProcessInfo, Sandbox } from "@kiln/core";
import { type Command, InvalidArgumentError } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { EXIT_INTERRUPTED, ExitCode, kilnErrorCode, stdoutClosed } from "../errors.ts";
import { examples } from "../help.ts";
import { out, printJson, renderTable } from "../output.ts";

interface PsFlags extends CommonOptions {
  quiet?: boolean;
}

interface LogsFlags extends CommonOptions {
  follow?: boolean;
}

export function registerProcesses(program: Command): void {
  withCommonOptions(
    program
      .command("ps")
      .description("List a sandbox's background processes (running, and those that ended lately)")
      .argument("<id>", "sandbox id or name")
      .option("-q, --quiet", "print pids only")
      .addHelpText(
        "after",
        examples("kiln ps box", "kiln ps box --json | jq '.processes[] | select(.running)'", "kiln ps -q box"),
      ),
  ).action(async (id: string, flags: PsFlags) => {
    await withKiln(flags, async (kiln) => {
      const processes = await (await kiln.get(id)).processes.list();
      if (flags.json) return printJson({ processes });
      if (flags.quiet) return void process.stdout.write(processes.map((p) => `${p.pid}\n`).join(""));
      const rows = processes.map((p) => [String(p.pid), p.tag ?? "", status(p), p.command]);
      process.stdout.write(`${renderTable(["PID", "TAG", "STATUS", "COMMAND"], rows)}\n`);
    });
  });

  withCommonOptions(
    program
      .command("logs")
      .description("Print what a background process wrote (the last 1 MiB of each stream); -f follows it")
      .argument("<id>", "sandbox id or name")
      .argument("<process>", "the process's pid, or its tag (kiln exec -d --tag)")
      .option("-f, --follow", "keep printing its output until it ends (Ctrl-C stops following)")
      .addHelpText(
        "after",
        `${examples("kiln logs box 42", "kiln logs -f box web", "kiln logs box 42 --json | jq -r .stderr")}

Its stdout goes to stdout and its stderr to stderr. --json prints { stdout, stderr }; with -f, one
JSON line per chunk as it arrives: { "type": "stdout" | "stderr", "data" }.`,
      ),
  ).action(async (id: string, processArg: string, flags: LogsFlags) => {
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once("SIGINT", onSigint);
    process.once("SIGTERM", onSigint);
    const signal = AbortSignal.any([controller.signal, stdoutClosed.signal]);
    try {
      await withKiln(flags, async (kiln) => {
        const sandbox = await kiln.get(id);
        const pid = await resolveProcess(sandbox, processArg);
        const line = (type: "stdout" | "stderr") => (data: string) =>
          void process.stdout.write(`${JSON.stringify({ type, data })}\n`);
        const logs = await sandbox.processes.logs(pid, {
          follow: flags.follow === true,
          signal,
          ...(flags.json
            ? flags.follow
              ? { onStdout: line("stdout"), onStderr: line("stderr") }
              : {}
            : {
                onStdout: (chunk: string) => void process.stdout.write(chunk),
                onStderr: (chunk: string) => void process.stderr.write(chunk),
              }),
        });
        if (flags.json && !flags.follow) printJson(logs);
      });
    } catch (error) {
      if (!(signal.aborted && kilnErrorCode(error) === "ABORTED")) throw error;
    } finally {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigint);
    }
    // Stopped following with Ctrl-C: as tail -f, 130, and nothing to explain.
    if (controller.signal.aborted) throw new ExitCode(EXIT_INTERRUPTED);
  });

  withCommonOptions(
    program
      .command("kill")
      .description("Send a signal to a background process in a sandbox (default SIGTERM)")
      .argument("<id>", "sandbox id or name")
      .argument("<process>", "the process's pid, or its tag (kiln exec -d --tag)")
      .option("-s, --signal <signal>", "the signal: a name (TERM, SIGKILL, INT, …) or a number", parseSignal, "SIGTERM")
      .addHelpText("after", examples("kiln kill box web", "kiln kill -s KILL box 42")),
  ).action(async (id: string, processArg: string, flags: CommonOptions & { signal: string }) => {
    await withKiln(flags, async (kiln) => {
      const sandbox = await kiln.get(id);
      const pid = await resolveProcess(sandbox, processArg);
      await sandbox.processes.signal(pid, flags.signal);
      if (flags.json) printJson({ pid, signal: flags.signal });
      else process.stdout.write(`${pid}\n`);
    });
  });
}

/** "TERM", "sigterm", "SIGTERM" or "15" -> "SIGTERM"; anything else is a usage error. */
export function parseSignal(text: string): string {
  const upper = text.trim().toUpperCase();
  const signals = osConstants.signals as Record<string, number>;
  if (/^\d{1,2}$/.test(upper)) {
    const name = Object.keys(signals).find((n) => signals[n] === Number(upper));
    if (name) return name;
  } else {
    const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
    if (name in signals) return name;
  }
  throw new InvalidArgumentError(`"${text}" is not a signal: use a name such as TERM, INT, KILL, HUP or its number.`);
}

function status(p: ProcessInfo): string {
  if (p.running) return out.green("running");
  return p.exitCode === 0 ? `exited (0)` : out.red(`exited (${p.exitCode ?? "?"})`);
}

/**
 * A pid (digits) as it is; otherwise a tag, matched against the sandbox's processes (the newest
 * with that tag, running ones first). An unknown one fails as the API does: NOT_FOUND, exit 1.
 */
export async function resolveProcess(sandbox: Sandbox, arg: string): Promise<number> {
  if (/^\d+$/.test(arg)) {
    const pid = Number(arg);
    if (pid >= 1 && pid <= 2 ** 22) return pid;
  }
  const processes = await sandbox.processes.list();
  const tagged = processes.filter((p) => p.tag === arg);
  const match = tagged.find((p) => p.running) ?? tagged.at(-1);
  if (match) return match.pid;
  throw new ExitCode(
    1,
    /^\d+$/.test(arg)
      ? `no background process ${arg} in sandbox ${sandbox.name ?? sandbox.id} (a pid is from 1 to ${2 ** 22}): see kiln ps`
      : `no background process with pid or tag "${arg}" in sandbox ${sandbox.name ?? sandbox.id}: see kiln ps`,
  );
}
