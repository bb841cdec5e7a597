/**
 * sandbox.processes: background processes (dev servers, watchers, long jobs). They belong to
 * the sandbox's agent, not to this process: they run on after every client disconnects, keep
 * the last 1 MiB of each output stream, and get SIGTERM, then SIGKILL a second later, when the
 * sandbox stops.
 */
import type { AgentConnection } from "../agent/connection.ts";
import { InvalidArgumentError, throwIfAborted } from "../errors.ts";
import type { ProcessInfo, ProcessLogsOptions, ProcessStartOptions } from "../types.ts";
import {
  describe,
  optionalBoolean,
  optionalEnv,
  optionalFunction,
  optionalObject,
  optionalSignal,
  optionalString,
} from "../validate.ts";
import { OutputCollector } from "./output.ts";
import { resolveSandboxPath } from "./paths.ts";
import { agentError, commandArgv } from "./pty.ts";

/** What logs() returns at most per stream (the agent keeps as much). */
const LOGS_MAX_BYTES = 1024 * 1024;

export interface SandboxProcesses {
  /** Starts a command in the background: a string through `sh -c`, an array as argv. */
  start(command: string | string[], options?: ProcessStartOptions): Promise<{ pid: number; tag?: string }>;
  /** Running and recently ended background processes. */
  list(): Promise<ProcessInfo[]>;
  /** What the process wrote (the last 1 MiB per stream); with `follow`, streams on until it ends or `signal` aborts. */
  logs(pid: number, options?: ProcessLogsOptions): Promise<{ stdout: string; stderr: string }>;
  /** Sends a signal to the process's group. @default "SIGTERM" */
  signal(pid: number, signal?: string): Promise<void>;
  /** Resolves with the exit code once it has ended (128 + signal if killed). */
  wait(pid: number): Promise<{ exitCode: number }>;
}

export class AgentProcesses implements SandboxProcesses {
  readonly #connect: () => Promise<AgentConnection>;

  constructor(connect: () => Promise<AgentConnection>) {
    this.#connect = connect;
  }

  async start(command: string | string[], options?: ProcessStartOptions): Promise<{ pid: number; tag?: string }> {
    const o = optionalObject("options", options);
    const header: Record<string, unknown> = { type: "proc_start", argv: commandArgv("command", command) };
    header.cwd = o.cwd === undefined ? "/workspace" : resolveSandboxPath("options.cwd", o.cwd);
    const env = optionalEnv("options.env", o.env);
    if (env !== undefined) header.env = env;
    const tag = optionalString("options.tag", o.tag);
    if (tag !== undefined) header.tag = tag;
    const reply = await (await this.#connect()).call(header as { type: string });
    if (reply.header.type !== "ok") throw agentError(reply, "command");
    return { pid: Number(reply.header.pid), ...(tag === undefined ? {} : { tag }) };
  }

  async list(): Promise<ProcessInfo[]> {
    const reply = await (await this.#connect()).call({ type: "proc_list" });
    if (reply.header.type !== "ok") throw agentError(reply, "pid");
    return reply.header.processes as ProcessInfo[];
  }

  async logs(pid: number, options?: ProcessLogsOptions): Promise<{ stdout: string; stderr: string }> {
    const o = optionalObject("options", options);
    const follow = optionalBoolean("options.follow", o.follow) ?? false;
    const signal = optionalSignal("options.signal", o.signal);
    const stdout = new OutputCollector(LOGS_MAX_BYTES, optionalFunction("options.onStdout", o.onStdout));
    const stderr = new OutputCollector(LOGS_MAX_BYTES, optionalFunction("options.onStderr", o.onStderr));
    throwIfAborted(signal, "logs");
    const connection = await this.#connect();
    let failure: Error | undefined;
    const request = connection.request(
      { type: "proc_logs", pid: validPid(pid), follow },
      (frame) => {
        const h = frame.header;
        if (h.type === "stdout") stdout.push(frame.body);
        else if (h.type === "stderr") stderr.push(frame.body);
        else if (h.type === "error") failure = agentError(frame, "pid");
        return h.type !== "stdout" && h.type !== "stderr";
      },
      undefined,
      // Following waits on the process, which may be silent for as long as it likes: no idle
      // deadline (AGENT_CALL_TIMEOUT_MS would judge the agent dead and close its connection).
      follow ? { deadlineMs: 0 } : {},
    );
    const stop = () => void connection.send({ type: "cancel", id: 0, target: request.id }).catch(() => {});
    signal?.addEventListener("abort", stop, { once: true });
    try {
      await request.finished;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
    if (failure) throw failure;
    return { stdout: stdout.text(), stderr: stderr.text() };
  }

  async signal(pid: number, signal = "SIGTERM"): Promise<void> {
    const name = optionalString("signal", signal) ?? "SIGTERM";
    const reply = await (await this.#connect()).call({ type: "proc_signal", pid: validPid(pid), signal: name });
    if (reply.header.type !== "ok") throw agentError(reply, "signal");
  }

  async wait(pid: number): Promise<{ exitCode: number }> {
    // Waits on the process, however long it runs: no idle deadline (as pty_wait).
    const reply = await (await this.#connect()).call({ type: "proc_wait", pid: validPid(pid) }, undefined, {
      deadlineMs: 0,
    });
    if (reply.header.type !== "exit") throw agentError(reply, "pid");
    return { exitCode: Number(reply.header.exitCode) };
  }
}

function validPid(pid: unknown): number {
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid < 1 || pid > 2 ** 22) {
    throw new InvalidArgumentError("pid", `must be a process id (a positive whole number), got ${describe(pid)}`);
  }
  return pid;
}
