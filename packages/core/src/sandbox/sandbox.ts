/**
 * A handle on one sandbox. Every method goes to the engine or to the sandbox's agent; no
 * state lives only in this object, so any number of handles (in any process) agree.
 */
import type { AgentConnections } from "../agent/connections.ts";
import { STOP_TIMEOUT_MS } from "../defaults.ts";
import type { Engine } from "../engine/engine.ts";
import { NotSupportedError, SandboxNotFoundError } from "../errors.ts";
import { type NetworkPolicy, validateNetwork } from "../network/policy.ts";
import type {
  CommandResult,
  ExecOptions,
  Execution,
  NetworkDecision,
  PreviewUrl,
  PreviewUrlOptions,
  RunCodeOptions,
  SandboxInfo,
  SnapshotInfo,
} from "../types.ts";
import { runCode, validateRunCode } from "./code.ts";
import { execCommand, validateExec } from "./exec.ts";
import { AgentFiles, type SandboxFiles } from "./files.ts";
import { AgentProcesses, type SandboxProcesses } from "./processes.ts";
import { AgentPtys, type SandboxPty } from "./pty.ts";
import { type RecordReader, recordInfo, type SandboxRecord, sandboxState } from "./records.ts";

/** What a Sandbox needs from the Kiln that made it. */
export interface SandboxServices {
  engine: Engine;
  connections: AgentConnections;
  records: RecordReader;
  snapshot(sandbox: Sandbox, name: string): Promise<SnapshotInfo>;
  previewUrl(sandbox: Sandbox, port: number, options?: PreviewUrlOptions): Promise<PreviewUrl>;
}

/**
 * One sandbox: an isolated container with an agent inside that runs commands (`exec`), stateful
 * code cells (`runCode`: Python, JavaScript, TypeScript), moves files (`files`), and holds
 * terminals (`pty`) and background processes (`processes`). Made by `kiln.create()` or found by
 * `kiln.get()`; a handle, so several can point at the same sandbox. `await using` deletes it.
 * A failing command or cell is data (exit code, `Execution.error`), not an exception.
 */
export class Sandbox implements AsyncDisposable {
  /** The engine's container id. */
  readonly id: string;
  /** The name given at create, unique among sandboxes. */
  readonly name?: string;
  /** Files inside the sandbox, moved as the sandbox's user: read, write, upload, download, list, stat, mkdir, remove. */
  readonly files: SandboxFiles;
  /** Terminals: create() one, connect(id) to re-attach. */
  readonly pty: SandboxPty;
  /** Background processes: start, list, logs, signal, wait. */
  readonly processes: SandboxProcesses;
  readonly #services: SandboxServices;
  readonly #record: SandboxRecord;
  /** Set on the handle create() returns: the image it was made from. */
  readonly #created: { image: string } | undefined;
  #deleting?: Promise<void>;

  /** @internal Made by Kiln; use kiln.create() or kiln.get(). */
  constructor(id: string, record: SandboxRecord, services: SandboxServices, created?: { image: string }) {
    this.id = id;
    this.#record = record;
    this.#services = services;
    this.#created = created;
    if (record.name !== undefined) this.name = record.name;
    this.files = new AgentFiles(() => this.#connect());
    this.pty = new AgentPtys(() => this.#connect());
    this.processes = new AgentProcesses(() => this.#connect());
  }

  /** The default language of runCode for this sandbox. */
  get language(): SandboxRecord["language"] {
    return this.#record.language;
  }

  /** The sandbox as the engine sees it now: state, resources, labels, network, timestamps. */
  async info(): Promise<SandboxInfo> {
    this.#services.connections.touch(this.id);
    const details = await this.#services.engine.inspectContainer(this.id);
    if (!details) throw new SandboxNotFoundError(this.id);
    const recorded = recordInfo(this.#record);
    // An allow-list's rules may have changed since creation (setNetwork): report those in force.
    if (typeof recorded.network === "object") {
      recorded.network = (await this.#services.engine.networkPolicy?.(this.id)) ?? recorded.network;
    }
    return {
      id: this.id,
      ...(this.name === undefined ? {} : { name: this.name }),
      state: sandboxState(details.status),
      labels: { ...this.#record.labels },
      createdAt: this.#record.createdAt,
      image: details.image,
      ...recorded,
    };
  }

  /**
   * @internal The info as create() knew it when it returned this handle (running, its image),
   * without asking the engine; undefined on handles from get(). A Kiln server answers a create
   * with it: an engine inspect right after a pool claim waits behind the claim's background
   * file write (~100 ms), which in-process callers do not pay unless they ask for info().
   */
  infoAtCreate(): SandboxInfo | undefined {
    if (this.#created === undefined) return undefined;
    return {
      id: this.id,
      ...(this.name === undefined ? {} : { name: this.name }),
      state: "running",
      labels: { ...this.#record.labels },
      createdAt: this.#record.createdAt,
      image: this.#created.image,
      ...recordInfo(this.#record),
    };
  }

  /** Runs a command: a string through `sh -c`, an array as argv. A non-zero exit is a result, not a throw. */
  async exec(command: string | string[], options?: ExecOptions): Promise<CommandResult> {
    const valid = validateExec(command, options);
    return execCommand(await this.#connect(), valid);
  }

  /** Runs a notebook cell; state persists per (language, context). The code failing is `Execution.error`. */
  async runCode(code: string, options?: RunCodeOptions): Promise<Execution> {
    const valid = validateRunCode(code, options, this.#record.language);
    return runCode(await this.#connect(), valid);
  }

  /**
   * A URL for a server listening on `port` inside the sandbox, signed and expiring (1 h unless
   * `expiresInMs`). It works with `network: "none"`: traffic rides on Kiln's own channel to the
   * sandbox's agent. Each hit counts as activity for `autoStopMs`.
   */
  previewUrl(port: number, options?: PreviewUrlOptions): Promise<PreviewUrl> {
    return this.#services.previewUrl(this, port, options);
  }

  /** Saves the sandbox's filesystem as a named snapshot, to create sandboxes from (`kiln.create({ snapshot })`). */
  async snapshot(name: string): Promise<SnapshotInfo> {
    await this.#services.records.written(this.id);
    return this.#services.snapshot(this, name);
  }

  /**
   * Changes the sandbox's network policy, running or stopped: an allow-list sandbox takes new
   * rules (or "none") for its next connection; connections already open stay open. A sandbox
   * created with "none" or "egress" cannot switch mode in place (NotSupportedError says why).
   */
  async setNetwork(policy: NetworkPolicy): Promise<void> {
    const valid = validateNetwork("network", policy);
    const engine = this.#services.engine;
    if (!engine.setNetwork) throw new NotSupportedError("setNetwork: this engine cannot change a sandbox's network");
    this.#services.connections.touch(this.id);
    await engine.setNetwork(this.id, valid);
  }

  /** Recent decisions of the sandbox's egress proxy, oldest first (allow-list sandboxes; else []). */
  async networkLog(): Promise<NetworkDecision[]> {
    await this.#existing();
    this.#services.connections.touch(this.id);
    return (await this.#services.engine.networkLog?.(this.id)) ?? [];
  }

  /** Stops the sandbox, keeping its filesystem. Idempotent. */
  async stop(): Promise<void> {
    this.#services.connections.close(this.id);
    await this.#services.records.written(this.id);
    await this.#existing();
    await this.#services.engine.stopContainer(this.id, STOP_TIMEOUT_MS);
  }

  /** Starts a stopped sandbox and waits until its agent answers. Idempotent. */
  async start(): Promise<void> {
    await this.#services.records.written(this.id);
    await this.#existing();
    await this.#services.engine.startContainer(this.id);
    await this.#connect();
  }

  /**
   * Deletes the sandbox and everything in it. Calling it again on this handle is a no-op; a
   * sandbox already deleted elsewhere gives SandboxNotFoundError.
   */
  delete(): Promise<void> {
    this.#deleting ??= (async () => {
      const { engine, connections } = this.#services;
      // Where the engine can use it, the agent ends itself first: a container that stopped by
      // itself is removed faster than a running one is killed and removed. The engine starts
      // waiting for the stop while the agent's acknowledgement is on its way.
      const exiting = engine.removeExited ? connections.exit(this.id) : undefined;
      if (!exiting) connections.close(this.id);
      const removed = exiting
        ? await (engine.removeExited as NonNullable<Engine["removeExited"]>).call(engine, this.id, exiting)
        : await engine.removeContainer(this.id);
      this.#services.records.forget(this.id);
      if (!removed) throw new SandboxNotFoundError(this.id);
    })();
    return this.#deleting;
  }

  /** Same as delete(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (err) {
      if (!(err instanceof SandboxNotFoundError)) throw err;
    }
  }

  #connect() {
    return this.#services.connections.get(this.id);
  }

  async #existing(): Promise<void> {
    if (!(await this.#services.engine.inspectContainer(this.id))) throw new SandboxNotFoundError(this.id);
  }
}
