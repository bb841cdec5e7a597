/**
 * Sandbox.exec: one command through the agent. A string runs through `sh -c`, an array is
 * exec'd as argv. The user's command failing is a result, never a throw.
 */

import type { AgentConnection } from "../agent/connection.ts";
import {
  DEFAULT_EXEC_TIMEOUT_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  HOST_TIMEOUT_SLACK_MS,
  MAX_OUTPUT_BYTES_LIMIT,
} from "../defaults.ts";
import { InvalidArgumentError, throwIfAborted } from "../errors.ts";
import type { CommandResult, RunStatus } from "../types.ts";
import {
  describe,
  optionalEnv,
  optionalFunction,
  optionalNumber,
  optionalObject,
  optionalSignal,
} from "../validate.ts";
import { OutputCollector } from "./output.ts";
import { resolveSandboxPath } from "./paths.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** stdin is sent in pieces no larger than this. */
const STDIN_CHUNK_BYTES = 256 * 1024;

interface ValidExec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdin?: Uint8Array | AsyncIterable<Uint8Array | string>;
  timeoutMs: number;
  maxOutputBytes: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
}

export function validateExec(command: unknown, options: unknown): ValidExec {
  const o = optionalObject("options", options);
  let argv: string[];
  if (typeof command === "string") {
    if (command.trim() === "") throw new InvalidArgumentError("command", "must not be empty");
    if (command.includes("\0")) throw new InvalidArgumentError("command", "must not contain NUL bytes");
    argv = ["/bin/sh", "-c", command];
  } else if (Array.isArray(command)) {
    if (command.length === 0) throw new InvalidArgumentError("command", "must not be an empty array");
    command.forEach((arg, i) => {
      if (typeof arg !== "string")
        throw new InvalidArgumentError(`command[${i}]`, `must be a string, got ${describe(arg)}`);
      if (arg.includes("\0")) throw new InvalidArgumentError(`command[${i}]`, "must not contain NUL bytes");
    });
    argv = command as string[];
  } else {
    throw new InvalidArgumentError("command", `must be a string or an array of strings, got ${describe(command)}`);
  }
  let stdin: ValidExec["stdin"];
  if (typeof o.stdin === "string") stdin = Buffer.from(o.stdin, "utf8");
  else if (o.stdin instanceof Uint8Array) stdin = o.stdin;
  else if (isAsyncIterable(o.stdin)) stdin = o.stdin as AsyncIterable<Uint8Array | string>;
  else if (o.stdin !== undefined) {
    throw new InvalidArgumentError(
      "options.stdin",
      `must be a string, a Uint8Array or an async iterable of them, got ${describe(o.stdin)}`,
    );
  }
  return {
    argv,
    cwd: o.cwd === undefined ? "/workspace" : resolveSandboxPath("options.cwd", o.cwd),
    env: optionalEnv("options.env", o.env) ?? {},
    stdin,
    timeoutMs: optionalNumber("options.timeoutMs", o.timeoutMs, { min: 1, max: DAY_MS }) ?? DEFAULT_EXEC_TIMEOUT_MS,
    maxOutputBytes:
      optionalNumber("options.maxOutputBytes", o.maxOutputBytes, { min: 0, max: MAX_OUTPUT_BYTES_LIMIT }) ??
      DEFAULT_MAX_OUTPUT_BYTES,
    onStdout: optionalFunction("options.onStdout", o.onStdout),
    onStderr: optionalFunction("options.onStderr", o.onStderr),
    signal: optionalSignal("options.signal", o.signal),
  };
}

export async function execCommand(connection: AgentConnection, exec: ValidExec): Promise<CommandResult> {
  throwIfAborted(exec.signal, "exec");
  const started = performance.now();
  const stdout = new OutputCollector(exec.maxOutputBytes, exec.onStdout);
  const stderr = new OutputCollector(exec.maxOutputBytes, exec.onStderr);
  let exit: { exitCode: number; status: RunStatus; truncated: boolean } | undefined;

  const request = connection.request(
    {
      type: "exec",
      argv: exec.argv,
      cwd: exec.cwd,
      env: exec.env,
      timeoutMs: exec.timeoutMs,
      maxOutputBytes: exec.maxOutputBytes,
      stdin: exec.stdin !== undefined,
    },
    (frame) => {
      const h = frame.header;
      if (h.type === "stdout") stdout.push(frame.body);
      else if (h.type === "stderr") stderr.push(frame.body);
      else if (h.type === "exit") {
        exit = { exitCode: Number(h.exitCode), status: h.status as RunStatus, truncated: Boolean(h.truncated) };
        return true;
      } else if (h.type === "error") {
        // The command could not start (missing binary or cwd, not executable): a result like a
        // shell's 127/126, not a throw. Only a request the agent could not parse is our fault.
        if (h.code === "EPROTO") throw new InvalidArgumentError("command", String(h.message));
        if (h.code === "E2BIG") throw tooBigForExecve(exec.argv, exec.env);
        stderr.push(Buffer.from(`${String(h.message)}\n`));
        exit = { exitCode: h.code === "EACCES" ? 126 : 127, status: "error", truncated: false };
        return true;
      }
      return false;
    },
    undefined,
    { deadlineMs: 0 }, // its own deadline: timeoutMs + HOST_TIMEOUT_SLACK_MS
  );

  if (exec.stdin !== undefined) void sendStdin(connection, request.id, exec.stdin);

  // Cancel on abort; and if the agent never answers (frozen sandbox), stop waiting.
  const cancel = () => void connection.send({ type: "cancel", id: 0, target: request.id }).catch(() => {});
  exec.signal?.addEventListener("abort", cancel, { once: true });
  let hostTimer: NodeJS.Timeout | undefined;
  const hostDeadline = new Promise<"late">((resolve) => {
    hostTimer = setTimeout(() => resolve("late"), exec.timeoutMs + HOST_TIMEOUT_SLACK_MS);
  });

  let outcome: { exitCode: number; status: RunStatus; truncated: boolean };
  try {
    const settled = await Promise.race([request.finished.then(() => "done" as const), hostDeadline]);
    if (settled === "late") {
      cancel();
      outcome = { exitCode: 137, status: "timeout", truncated: false };
    } else {
      outcome = exit as NonNullable<typeof exit>;
    }
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    // The connection went away under a running command: the sandbox was stopped or deleted.
    outcome = { exitCode: 137, status: "killed", truncated: false };
  } finally {
    clearTimeout(hostTimer);
    exec.signal?.removeEventListener("abort", cancel);
  }
  if (exec.signal?.aborted && outcome.status !== "ok") outcome.status = "killed";

  return {
    exitCode: outcome.exitCode,
    stdout: stdout.text(),
    stderr: stderr.text(),
    status: outcome.status,
    truncated: outcome.truncated || stdout.truncated || stderr.truncated,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Linux's execve limits: one argument or "KEY=value" string, and all of them together. */
const ARG_STRING_MAX = 128 * 1024;

/** E2BIG from execve, with the field to blame: the caller's argv or env. */
function tooBigForExecve(argv: string[], env: Record<string, string> | undefined): InvalidArgumentError {
  const envStrings = Object.entries(env ?? {}).map(([k, v]) => Buffer.byteLength(`${k}=${v}`));
  const argStrings = argv.map((a) => Buffer.byteLength(a));
  const envTotal = envStrings.reduce((a, b) => a + b, 0);
  const argTotal = argStrings.reduce((a, b) => a + b, 0);
  const blameEnv =
    envStrings.some((n) => n >= ARG_STRING_MAX) ||
    (!argStrings.some((n) => n >= ARG_STRING_MAX) && envTotal > argTotal);
  return new InvalidArgumentError(
    blameEnv ? "options.env" : "command",
    `too large for the sandbox's kernel to start the command (execve: E2BIG; each argument or KEY=value string must be under ${ARG_STRING_MAX} bytes, all together about 2 MiB; argv ${argTotal} bytes, env ${envTotal} bytes). Pass large data through stdin or a file instead`,
  );
}

function isAsyncIterable(value: unknown): boolean {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

/** Feeds stdin as it comes (a live stream is forwarded chunk by chunk), then closes it. */
async function sendStdin(
  connection: AgentConnection,
  target: number,
  data: Uint8Array | AsyncIterable<Uint8Array | string>,
): Promise<void> {
  try {
    const chunks = data instanceof Uint8Array ? [data] : data;
    for await (const chunk of chunks) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
      for (let at = 0; at < bytes.length; at += STDIN_CHUNK_BYTES) {
        await connection.send({ type: "stdin", id: 0, target }, bytes.subarray(at, at + STDIN_CHUNK_BYTES));
      }
    }
    await connection.send({ type: "stdin_end", id: 0, target });
  } catch {
    // The command ended or the connection closed; its result says what happened.
  }
}
