/**
 * sandbox.processes for KilnSandbox: each spawned process is one Kiln exec that runs in the
 * background; its output streams into the handle; its stdin (unless `stdinMode: "ignore"`) is a
 * live stream fed by sendStdin() and ended by closeStdin(); kill() cancels the exec, which
 * SIGKILLs the command's process group inside the sandbox.
 */
import type { CommandResult as KilnCommandResult, Sandbox } from "@kiln/core";
import {
  type CommandResult,
  ProcessHandle,
  type ProcessInfo,
  SandboxProcessManager,
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

interface QueuedWrite {
  data: string;
  sent: () => void;
  failed: (err: Error) => void;
}

/**
 * A process's stdin while it runs: an async iterable handed to Kiln's exec, which forwards each
 * chunk as it is yielded and closes the command's stdin when the iterable ends. write() resolves
 * once exec has sent the chunk (it asks for the next one only after that), in write order.
 */
class StdinPipe implements AsyncIterable<string> {
  readonly #queue: QueuedWrite[] = [];
  #inFlight: QueuedWrite | undefined;
  #wake: (() => void) | undefined;
  #ended = false;
  #drained: Promise<void>;
  #markDrained!: () => void;

  constructor() {
    this.#drained = new Promise((resolve) => {
      this.#markDrained = resolve;
    });
  }

  /** True once end() or fail() was called: no more writes are taken. */
  get ended(): boolean {
    return this.#ended;
  }

  write(data: string): Promise<void> {
    if (this.#ended) return Promise.reject(new Error("stdin is closed"));
    if (data === "") return Promise.resolve();
    return new Promise((sent, failed) => {
      this.#queue.push({ data, sent, failed });
      this.#wakeUp();
    });
  }

  /** Ends the stream after what was written; resolves once that has been sent (or has failed). */
  end(): Promise<void> {
    this.#ended = true;
    this.#wakeUp();
    return this.#drained;
  }

  /** The process is gone: writes not yet sent fail with `err`, and the stream ends. */
  fail(err: Error): void {
    this.#ended = true;
    for (const write of [this.#inFlight, ...this.#queue.splice(0)]) write?.failed(err);
    this.#inFlight = undefined;
    this.#wakeUp();
    this.#markDrained();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    try {
      for (;;) {
        const write = this.#queue.shift();
        if (write) {
          this.#inFlight = write;
          yield write.data;
          // exec is back for the next chunk: this one has been sent.
          this.#inFlight = undefined;
          write.sent();
        } else if (this.#ended) {
          return;
        } else {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
      }
    } finally {
      this.#markDrained();
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

export class KilnProcessHandle extends ProcessHandle {
  readonly pid: string;
  readonly #controller = new AbortController();
  readonly #done: Promise<CommandResult>;
  /** Undefined for `stdinMode: "ignore"`: the command's stdin is /dev/null. */
  readonly #stdin: StdinPipe | undefined;
  #exitCode: number | undefined;

  constructor(pid: string, sandbox: Sandbox, command: string, options: SpawnProcessOptions) {
    super(options);
    this.pid = pid;
    this.command = command;
    this.#stdin = options.stdinMode === "ignore" ? undefined : new StdinPipe();
    const running = sandbox.exec(command, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(this.#stdin === undefined ? {} : { stdin: this.#stdin }),
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
        this.#stdin?.fail(
          new Error(`Process ${pid} exited with code ${result.exitCode} while its stdin was being written`),
        );
        return { ...toMastraResult(result, this.stdout, this.stderr), command };
      },
      (err: unknown) => {
        // The exec never ran (the sandbox went away, or the abort came first): a failed process.
        this.#exitCode = 137;
        this.#stdin?.fail(new Error(`Process ${pid} did not run`));
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

  /** Writes to the process's stdin; resolves once the data has been sent to the sandbox. */
  async sendStdin(data: string): Promise<void> {
    const stdin = this.#openStdin();
    if (stdin.ended) throw new Error(`Process ${this.pid} has closed stdin`);
    await stdin.write(data);
  }

  /** Closes the process's stdin (EOF) after what was sent; closing it again does nothing. */
  override async closeStdin(): Promise<void> {
    await this.#openStdin().end();
  }

  #openStdin(): StdinPipe {
    if (this.#exitCode !== undefined) {
      throw new Error(`Process ${this.pid} has already exited with code ${this.#exitCode}`);
    }
    if (this.#stdin === undefined) {
      throw new Error(`Process ${this.pid} was spawned with stdinMode "ignore": it has no stdin`);
    }
    return this.#stdin;
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
