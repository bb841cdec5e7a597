/**
 * KilnSandbox: a Mastra workspace sandbox (MastraSandbox) backed by a Kiln sandbox, so Mastra's
 * own workspace tools (execute_command, background processes) run inside a Kiln container.
 *
 *   new Workspace({ sandbox: new KilnSandbox({ kiln }), filesystem: ... })
 */
import { randomBytes } from "node:crypto";
import type { CreateSandboxOptions, Kiln, Sandbox } from "@kiln/core";
import { KilnError } from "@kiln/core";
import { DEFAULT_TOOL_TIMEOUT_MS } from "@kiln/core/tools";
import {
  type CommandResult,
  type ExecuteCommandOptions,
  MastraSandbox,
  type MastraSandboxOptions,
  type ProviderStatus,
  SandboxAbortError,
  type SandboxCloneOptions,
  type SandboxFileInput,
  type SandboxInfo,
  SandboxNotReadyError,
  validateSandboxFileMode,
  type WriteFilesOptions,
} from "@mastra/core/workspace";
import { sandboxNameForConversation } from "../binding/sandbox-binding.ts";
import { WORKDIR } from "../defaults.ts";
import { checkpointVersion, latestCheckpoint, pruneCheckpoint } from "./checkpoints.ts";
import { KilnProcessManager, toMastraResult } from "./process-manager.ts";
import { commandLine, definedEnv } from "./shell.ts";

export interface KilnSandboxOptions extends Omit<MastraSandboxOptions, "processes"> {
  /** Makes (or finds) the sandbox on start(). Required unless `sandbox` is given. */
  kiln?: Kiln;
  /** Use this existing sandbox. destroy() leaves it alone unless `deleteOnDestroy` is true. */
  sandbox?: Sandbox;
  /** Mastra's id for this sandbox. @default a random `kiln-<hex>` */
  id?: string;
  /**
   * Kiln name (or id) of the sandbox: start() reconnects to it (starting it if stopped) or
   * creates it. The same name finds the same sandbox from any process. @default `mastra-<id>`
   */
  name?: string;
  /** Options for the sandbox start() creates. @default {} */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /** Time limit of executeCommand when the caller gives none. @default 60_000 */
  timeoutMs?: number;
  /** snapshot() saves here, and a newly created sandbox starts from its newest save. @default the Kiln name */
  checkpointName?: string;
  /** Start a new sandbox from this checkpoint when `checkpointName` has none yet. @default none */
  seedCheckpointName?: string;
  /** Delete the Kiln sandbox on destroy(). @default true, false for a sandbox passed in */
  deleteOnDestroy?: boolean;
}

function isStale(err: unknown): boolean {
  return KilnError.isInstance(err) && (err.code === "SANDBOX_NOT_RUNNING" || err.code === "SANDBOX_NOT_FOUND");
}

function isNotFound(err: unknown): boolean {
  return KilnError.isInstance(err) && err.code === "SANDBOX_NOT_FOUND";
}

export class KilnSandbox extends MastraSandbox<Sandbox> {
  readonly id: string;
  readonly name = "KilnSandbox";
  readonly provider = "kiln";
  status: ProviderStatus = "pending";
  declare readonly processes: KilnProcessManager;
  override readonly supportsCheckpoints: boolean;

  readonly #options: KilnSandboxOptions;
  readonly #kiln: Kiln | undefined;
  readonly #attached: Sandbox | undefined;
  readonly #kilnName: string;
  readonly #checkpoint: string;
  readonly #deleteOnDestroy: boolean;
  readonly #constructedAt = new Date();
  #sandbox: Sandbox | undefined;

  constructor(options: KilnSandboxOptions) {
    if (!options?.kiln && !options?.sandbox) throw new TypeError("KilnSandbox: pass { kiln } or { sandbox }");
    super({
      ...options,
      name: "KilnSandbox",
      workingDirectory: options.workingDirectory ?? WORKDIR,
      processes: new KilnProcessManager(),
    });
    this.#options = options;
    this.#kiln = options.kiln;
    this.#attached = options.sandbox;
    this.id = options.id ?? `kiln-${randomBytes(6).toString("hex")}`;
    this.#kilnName = options.name ?? options.sandbox?.name ?? sandboxNameForConversation(this.id);
    this.#checkpoint = options.checkpointName ?? this.#kilnName;
    this.#deleteOnDestroy = options.deleteOnDestroy ?? !options.sandbox;
    this.supportsCheckpoints = this.#kiln !== undefined;
  }

  /** The Kiln sandbox, started first if it is not running. */
  async getSandbox(): Promise<Sandbox> {
    await this.ensureRunning();
    if (!this.#sandbox) throw new SandboxNotReadyError(this.id);
    return this.#sandbox;
  }

  // --- lifecycle: the base class orchestrates find -> connect, else create -------------------

  protected override async find(): Promise<Sandbox | undefined> {
    if (this.#attached) return this.#attached;
    try {
      return await this.#kiln!.get(this.#kilnName);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  protected override async connect(sandbox: Sandbox): Promise<void> {
    if ((await sandbox.info()).state !== "running") await sandbox.start();
    this.#sandbox = sandbox;
  }

  protected override async create(): Promise<void> {
    const kiln = this.#kiln!;
    const seed =
      (await latestCheckpoint(kiln, this.#checkpoint)) ??
      (this.#options.seedCheckpointName ? await latestCheckpoint(kiln, this.#options.seedCheckpointName) : undefined);
    this.#sandbox = await kiln.getOrCreate(this.#kilnName, {
      ...this.#options.sandboxOptions,
      ...(seed ? { snapshot: seed, image: undefined } : {}),
    });
  }

  /** Stops the container, keeping its files; the next command starts it again. */
  override async stop(): Promise<void> {
    await this.processes.killAll();
    await this.#sandbox?.stop().catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  /** Deletes the container (unless it was passed in, or `deleteOnDestroy` is false). */
  override async destroy(): Promise<void> {
    await this.processes.killAll();
    const sandbox = this.#sandbox ?? (this.#deleteOnDestroy ? await this.find().catch(() => undefined) : undefined);
    this.#sandbox = undefined;
    if (this.#deleteOnDestroy && sandbox) {
      await sandbox.delete().catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }

  // --- commands and files ----------------------------------------------------------------------

  override async executeCommand(
    command: string,
    args?: string[],
    options: ExecuteCommandOptions = {},
  ): Promise<CommandResult> {
    const line = commandLine(command, args);
    const result = await this.#withSandbox((sandbox) =>
      sandbox.exec(line, {
        cwd: options.cwd ?? this.workingDirectory ?? WORKDIR,
        env: definedEnv(this.getEnv(), options.env),
        timeoutMs: options.timeout ?? this.#options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
        ...(options.onStdout ? { onStdout: options.onStdout } : {}),
        ...(options.onStderr ? { onStderr: options.onStderr } : {}),
        ...(options.abortSignal ? { signal: options.abortSignal } : {}),
      }),
    );
    const stdout = retained(result.stdout, options.maxRetainedBytes);
    const stderr = retained(result.stderr, options.maxRetainedBytes);
    return {
      ...toMastraResult(result, stdout.text, stderr.text),
      ...(stdout.dropped ? { stdoutTruncated: true, stdoutDroppedBytes: stdout.dropped } : {}),
      ...(stderr.dropped ? { stderrTruncated: true, stderrDroppedBytes: stderr.dropped } : {}),
      command: line,
      ...(args ? { args } : {}),
    };
  }

  /** Writes files into the sandbox (parents created); `mode` is applied with chmod. */
  override async writeFiles(files: SandboxFileInput[], options: WriteFilesOptions = {}): Promise<void> {
    for (const file of files) if (file.mode !== undefined) validateSandboxFileMode(file.mode);
    const signal = options.abortSignal;
    if (signal?.aborted) throw new SandboxAbortError("writeFiles", signal.reason);
    await this.#withSandbox(async (sandbox) => {
      for (const file of files) {
        if (signal?.aborted) throw new SandboxAbortError("writeFiles", signal.reason);
        await sandbox.files.write(file.path, file.content);
        if (file.mode !== undefined) {
          const chmod = await sandbox.exec(["chmod", file.mode.toString(8), file.path], { cwd: WORKDIR });
          if (chmod.status !== "ok") throw new Error(`chmod ${file.path} failed: ${chmod.stderr.trim()}`);
        }
      }
    });
  }

  /** Saves the sandbox's filesystem as the newest version of its checkpoint (a Kiln snapshot). */
  override async snapshot(): Promise<void> {
    const name = checkpointVersion(this.#checkpoint);
    await this.#withSandbox((sandbox) => sandbox.snapshot(name));
    if (this.#kiln) await pruneCheckpoint(this.#kiln, this.#checkpoint, name);
  }

  /** A sibling with this one's settings: no I/O until it starts. */
  clone(options: SandboxCloneOptions = {}): KilnSandbox {
    if (!this.#kiln) throw new TypeError("KilnSandbox.clone needs a sandbox made with { kiln }");
    const { sandbox: _attached, id: _id, name: _name, ...inherited } = this.#options;
    const base = this.#options.sandboxOptions ?? {};
    return new KilnSandbox({
      ...inherited,
      kiln: this.#kiln,
      ...(options.id ? { id: options.id } : {}),
      ...(options.sandboxId ? { name: options.sandboxId } : {}),
      ...(options.workingDirectory ? { workingDirectory: options.workingDirectory } : {}),
      ...(options.checkpointName ? { checkpointName: options.checkpointName } : {}),
      ...(options.seedCheckpointName ? { seedCheckpointName: options.seedCheckpointName } : {}),
      env: { ...this.getEnv() },
      sandboxOptions: {
        ...base,
        ...(options.env ? { env: { ...base.env, ...options.env } } : {}),
        ...(options.idleTimeoutMinutes ? { autoStopMs: options.idleTimeoutMinutes * 60_000 } : {}),
      },
    });
  }

  override async getInfo(): Promise<SandboxInfo> {
    const resources = this.#options.sandboxOptions?.resources;
    const info: SandboxInfo = {
      id: this.id,
      name: this.name,
      provider: this.provider,
      status: this.status,
      createdAt: this.#constructedAt,
      ...(resources
        ? {
            resources: {
              ...(resources.memoryMb ? { memoryMB: resources.memoryMb } : {}),
              ...(resources.cpus ? { cpuCores: resources.cpus } : {}),
              ...(resources.diskMb ? { diskMB: resources.diskMb } : {}),
            },
          }
        : {}),
      metadata: { kilnName: this.#kilnName, checkpointName: this.#checkpoint },
    };
    if (!this.#sandbox) return info;
    try {
      const kiln = await this.#sandbox.info();
      return {
        ...info,
        createdAt: new Date(kiln.createdAt),
        metadata: { ...info.metadata, kilnId: kiln.id, state: kiln.state, image: kiln.image, labels: kiln.labels },
      };
    } catch (err) {
      if (isNotFound(err)) return info;
      throw err;
    }
  }

  override getInstructions(): string {
    const network = this.#options.sandboxOptions?.network;
    return [
      "Commands run in a Kiln sandbox: an isolated Linux container, as an unprivileged user, starting in",
      `${this.workingDirectory ?? WORKDIR}. Python 3 (numpy, pandas, matplotlib) and Node.js 24 are installed.`,
      network && network !== "none" ? "Outbound network access is available." : "There is no network access.",
      "Commands that do not finish in time are killed.",
    ].join(" ");
  }

  /**
   * Runs `work` on the running sandbox. When the container was stopped or deleted behind this
   * object's back (by Kiln's auto-stop, or another process), it is started or re-created once.
   */
  async #withSandbox<T>(work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    const sandbox = await this.getSandbox();
    try {
      return await work(sandbox);
    } catch (err) {
      if (!isStale(err)) throw err;
      this.#sandbox = undefined;
      this.status = "stopped";
      return work(await this.getSandbox());
    }
  }
}

/** Mastra's maxRetainedBytes keeps the newest bytes of a stream. */
function retained(text: string, maxBytes: number | undefined): { text: string; dropped: number } {
  if (maxBytes === undefined || !Number.isFinite(maxBytes)) return { text, dropped: 0 };
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return { text, dropped: 0 };
  const kept = bytes.subarray(bytes.length - maxBytes);
  return { text: new TextDecoder().decode(kept).replace(/^\uFFFD+/, ""), dropped: bytes.length - maxBytes };
}
