/**
 * sandbox.processes for KilnSandbox: each spawned process is one Kiln exec that runs in the
 * background; its output streams into the handle; kill() cancels the exec, which SIGKILLs the
 * command's process group inside the sandbox.
 */
import type { CommandResult as KilnCommandResult, Sandbox } from "@kiln/core";
import {
  type CommandResult,
  ProcessHandle,
  type ProcessInfo,
  SandboxProcessManager,
  SandboxUnsupportedFeatureError,
  type SpawnProcessOptions,
} from "@mastra/core/workspace";
import { DEFAULT_PROCESS_TIMEOUT_MS, PROCESS_OUTPUT_BYTES } from "../defaults.ts";
import type { KilnSandbox } from "./kiln-sandbox.ts";
import { definedEnv } from "./shell.ts";

/** Kiln's CommandResult in Mastra's shape. */
export function toMastraResult(result: KilnCommandResult, stdout: string, stderr: string): CommandResult {
  return {
    success: result.status === "ok",
    exitCode: result.exitCode,
    stdout,
    stderr,
    executionTimeMs: Math.round(result.durationMs),
    timedOut: result.status === "timeout",
    killed: result.status === "killed" || result.status === "oom",
  };
}

export class KilnProcessHandle extends ProcessHandle {
  readonly pid: string;
  readonly #controller = new AbortController();
  readonly #done: Promise<CommandResult>;
  #exitCode: number | undefined;

  constructor(pid: string, sandbox: Sandbox, command: string, options: SpawnProcessOptions) {
    super(options);
    this.pid = pid;
    this.command = command;
    const running = sandbox.exec(command, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: definedEnv(options.env),
      timeoutMs: options.timeout ?? DEFAULT_PROCESS_TIMEOUT_MS,
      maxOutputBytes: PROCESS_OUTPUT_BYTES,
      onStdout: (chunk) => this.emitStdout(chunk),
      onStderr: (chunk) => this.emitStderr(chunk),
      signal: this.#controller.signal,
    });
    this.#done = running.then(
      (result) => {
        this.#exitCode = result.exitCode;
        return { ...toMastraResult(result, this.stdout, this.stderr), command };
      },
      (err: unknown) => {
        // The exec never ran (the sandbox went away, or the abort came first): a failed process.
        this.#exitCode = 137;
        const message = err instanceof Error ? err.message : String(err);
        return {
          success: false,
          exitCode: 137,
          stdout: this.stdout,
          stderr: `${this.stderr}${message}\n`,
          executionTimeMs: 0,
          killed: true,
          command,
        };
      },
    );
  }

  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  async kill(): Promise<boolean> {
    if (this.#exitCode !== undefined) return false;
    this.#controller.abort();
    await this.#done;
    return true;
  }

  /** Kiln gives a command its stdin when it starts; there is no pipe to write to later. */
  async sendStdin(_data: string): Promise<void> {
    if (this.#exitCode !== undefined) throw new Error(`Process ${this.pid} has exited`);
    throw new SandboxUnsupportedFeatureError(
      "Kiln processes take stdin only when they start: pipe the input in the command instead (e.g. `printf 'data' | cmd`)",
    );
  }

  override async wait(): Promise<CommandResult> {
    return this.#done;
  }
}

export class KilnProcessManager extends SandboxProcessManager<KilnSandbox> {
  #nextPid = 1;

  override async spawn(command: string, options: SpawnProcessOptions = {}): Promise<ProcessHandle> {
    const sandbox = await this.sandbox.getSandbox();
    const handle = new KilnProcessHandle(String(this.#nextPid++), sandbox, command, {
      ...options,
      cwd: options.cwd ?? this.sandbox.workingDirectory,
    });
    this._tracked.set(handle.pid, handle);
    return handle;
  }

  override async list(): Promise<ProcessInfo[]> {
    return [...this._tracked.values()].map((handle) => ({
      pid: handle.pid,
      running: handle.exitCode === undefined,
      ...(handle.command === undefined ? {} : { command: handle.command }),
      ...(handle.exitCode === undefined ? {} : { exitCode: handle.exitCode }),
    }));
  }

  /** Kills every process still running (before the sandbox stops or is destroyed). */
  async killAll(): Promise<void> {
    await Promise.all([...this._tracked.values()].map((handle) => handle.kill().catch(() => false)));
  }
}
