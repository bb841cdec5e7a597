/**
 * The warm pool: N sandboxes of the default shape, started, with their agent connected and the
 * default Python context running (the agent warms it once idle, 100 ms after the pool's last
 * call), waiting to be claimed. A claim renames the container, gives the agent the sandbox's
 * environment and settings and hands it over; the record files and the refill follow in the
 * background once the claim's quiet window has passed (POOL_CLAIM_QUIET_MS). A pooled container
 * is handed out at most once and only ever fresh.
 */
import { createHash, randomBytes } from "node:crypto";
import type { AgentConnections } from "../agent/connections.ts";
import { POOL_CLAIM_QUIET_MS, POOL_ORPHAN_STOP_MS, POOL_RECORD_RETRY_MS } from "../defaults.ts";
import type { ContainerSpec, Engine, EngineWarmPool } from "../engine/engine.ts";
import { KIND_POOL, LABEL, POOL_PREFIX } from "../engine/labels.ts";
import { ConflictError, EngineUnavailableError } from "../errors.ts";
import type { ValidCreate } from "../sandbox/create-options.ts";
import {
  type AgentSettings,
  labelsFromRecord,
  type RecordReader,
  type SandboxRecord,
  writeSandboxFiles,
} from "../sandbox/records.ts";

/** What a pooled container must share with a create() request for the claim to be transparent. */
export type PoolShape = Pick<ContainerSpec, "image" | "cpus" | "memoryMb" | "pids" | "network"> & {
  diskMb?: number;
  runtime?: ContainerSpec["runtime"];
};

export function shapeKey(shape: PoolShape): string {
  const canonical = JSON.stringify([
    shape.image,
    shape.cpus,
    shape.memoryMb,
    shape.pids,
    shape.network,
    shape.diskMb ?? null,
    // runc keeps the key it had before runtimes existed, so older processes' pools still match.
    ...(shape.runtime === undefined || shape.runtime === "runc" ? [] : [shape.runtime]),
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** True when a request can take a pooled sandbox of `shape` without anyone noticing. */
export function compatible(request: ValidCreate, image: string, shape: PoolShape): boolean {
  return (
    request.snapshot === undefined &&
    request.volumes.length === 0 &&
    image === shape.image &&
    request.resources.cpus === shape.cpus &&
    request.resources.memoryMb === shape.memoryMb &&
    request.resources.pids === shape.pids &&
    request.resources.diskMb === shape.diskMb &&
    request.network === shape.network &&
    request.runtime === (shape.runtime ?? "runc")
  );
}

export interface PoolOptions {
  size: number;
  shape: PoolShape;
  owner: string;
  engine: Engine;
  connections: AgentConnections;
  records: RecordReader;
  /**
   * A snapshot's pool: a member is ready only once its kernels have loaded the snapshot's Python
   * variables (the agent's state_report answers then), so a claim never waits for a restore.
   */
  awaitRestore?: boolean;
  /** Called with a background failure (the pool keeps trying on the next claim). */
  onError?: (err: unknown) => void;
}

export class WarmPool {
  readonly #o: PoolOptions;
  readonly #key: string;
  /** Started containers whose agent answered: ready to claim. */
  readonly #ready: string[] = [];
  /** Background record writes still in flight; close() waits for them. */
  readonly #pending = new Set<Promise<unknown>>();
  #filling = 0;
  #closed = false;
  #refill?: Promise<void>;
  /** The quiet window after a claim (POOL_CLAIM_QUIET_MS): ends by itself, or early (end()). */
  #quiet?: { done: Promise<void>; end: () => void };
  /** Set when the engine keeps the pool itself (Engine.warmPool, e.g. a Kubernetes ReplicaSet). */
  #engineKept?: EngineWarmPool;

  constructor(options: PoolOptions) {
    this.#o = options;
    this.#key = shapeKey(options.shape);
  }

  get shape(): PoolShape {
    return this.#o.shape;
  }

  /** How many sandboxes are ready right now. */
  get readyCount(): number {
    return this.#engineKept ? this.#engineKept.ready : this.#ready.length;
  }

  /** Starts filling in the background; `await pool.filled()` waits for it. */
  start(): void {
    const { engine, shape, size } = this.#o;
    if (engine.warmPool) {
      this.#engineKept = engine.warmPool(
        {
          ...shape,
          name: `${POOL_PREFIX}${this.#key}`,
          labels: { [LABEL.kind]: KIND_POOL, [LABEL.shape]: this.#key, [LABEL.owner]: this.#o.owner },
          env: {},
          volumes: [],
        },
        this.#key,
        size,
      );
      return;
    }
    this.#kick();
  }

  /** Resolves once the pool has reached its size (or stopped trying after a failure). */
  async filled(): Promise<void> {
    if (this.#engineKept) {
      await this.#engineKept.filled().catch((err) => this.#o.onError?.(err));
      return;
    }
    while (this.#refill) await this.#refill;
  }

  /**
   * Takes a ready sandbox for `request`, or undefined when none is ready (the caller creates cold).
   * On the critical path: the rename (which also makes the name unique, atomically) and, when
   * there is one, the environment sent to the agent inline. The record and env files are written
   * into the container in the background (the engine's archive API takes ~60 ms); this process
   * knows the record at once, other processes once the write lands. If the rename fails (name
   * taken) the container goes back to the pool untouched and the error is thrown.
   */
  async claim(request: ValidCreate, containerName: string, record: SandboxRecord): Promise<string | undefined> {
    if (this.#engineKept) return this.#claimEngineKept(this.#engineKept, request, containerName, record);
    // A member can die while it waits (an engine restart, the OOM killer, a kill): the claim finds
    // out through its agent, discards it and takes the next one; none left means a cold create.
    for (let id = this.#ready.shift(); id !== undefined; id = this.#ready.shift()) {
      const claimed = await this.#claimOne(id, request, containerName, record);
      if (claimed) return id;
    }
    // Empty: the caller creates cold, and the refill is wanted now.
    this.#quiet?.end();
    this.#kick();
    return undefined;
  }

  /**
   * The window after a claim in which the pool leaves the engine to the new sandbox's first
   * calls. Claims within it share it (it is not extended, so a stream of claims cannot starve
   * the refill); close() and an empty pool end it early.
   */
  #quietWindow(): Promise<void> {
    if (!this.#quiet) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      const end = () => {
        clearTimeout(timer);
        if (this.#quiet?.done === done) this.#quiet = undefined;
        resolve();
      };
      const timer = setTimeout(end, POOL_CLAIM_QUIET_MS);
      this.#quiet = { done, end };
    }
    return this.#quiet.done;
  }

  /** True when `id` is now the caller's; false when it was dead (and is discarded). */
  async #claimOne(id: string, request: ValidCreate, containerName: string, record: SandboxRecord): Promise<boolean> {
    const { engine, connections, records } = this.#o;
    const env = request.env;
    const agent = { autoStopMs: request.autoStopMs ?? null };
    const rename = engine.renameContainer(id, containerName);
    // The agent gets the environment and settings inline; they reach its files in the background.
    // With nothing to send, a ping proves the member is alive (it runs beside the rename, so it is free).
    const configure = async () => {
      const connection = await connections.get(id);
      const replies = await Promise.all([
        Object.keys(env).length > 0 ? connection.call({ type: "set_env", env }) : undefined,
        // Always: configure replaces the member's settings, which clears its orphanStopMs.
        connection.call({ type: "configure", ...agent }),
      ]);
      const refused = replies.find((r) => r && r.header.type !== "ok");
      if (refused) throw new Error(`the sandbox's agent refused its settings: ${String(refused.header.message)}`);
    };
    const configured = configure();
    configured.catch(() => {}); // awaited below, except when the rename fails and the member is discarded
    try {
      await rename;
    } catch (err) {
      await configured.catch(() => {});
      if (err instanceof ConflictError || err instanceof EngineUnavailableError) {
        // The name is taken, or the engine is gone: the member is fine, the request is not.
        this.#ready.unshift(id);
        this.#kick();
        throw err;
      }
      await this.#discard(id); // e.g. the container no longer exists
      return false;
    }
    try {
      await configured;
    } catch (err) {
      await this.#discard(id);
      if (err instanceof EngineUnavailableError) throw err;
      this.#o.onError?.(err);
      return false;
    }
    records.remember(id, record);
    // The files (for a restart and for other processes) and the refill wait for the quiet
    // window; stop, start and snapshot write the files sooner (RecordReader.written).
    const quiet = this.#quietWindow();
    const write = records.deferWrite(id, () => writeClaimFiles(engine, id, { record, env, agent }));
    this.#track(quiet.then(write));
    this.#kick(quiet);
    return true;
  }

  /**
   * An engine-kept pool: the engine hands over one ready member, already relabelled as an
   * ordinary sandbox (its record is in its labels); the agent gets the environment and settings
   * inline. A member that does not answer is removed and the next one tried.
   */
  async #claimEngineKept(
    pool: EngineWarmPool,
    request: ValidCreate,
    containerName: string,
    record: SandboxRecord,
  ): Promise<string | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = await pool.claim(containerName, labelsFromRecord(record, this.#o.owner));
      if (id === undefined) return undefined;
      try {
        const connection = await this.#o.connections.get(id);
        const replies = await Promise.all([
          Object.keys(request.env).length > 0 ? connection.call({ type: "set_env", env: request.env }) : undefined,
          connection.call({ type: "configure", autoStopMs: request.autoStopMs ?? null }),
        ]);
        const refused = replies.find((r) => r && r.header.type !== "ok");
        if (refused) throw new Error(`the sandbox's agent refused its settings: ${String(refused.header.message)}`);
        this.#o.records.remember(id, record);
        return id;
      } catch (err) {
        await this.#discard(id);
        if (err instanceof EngineUnavailableError) throw err;
        this.#o.onError?.(err);
      }
    }
    return undefined;
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err) => this.#o.onError?.(err)).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /** A half-claimed container nobody may get now: removed rather than left behind. */
  async #discard(id: string): Promise<void> {
    this.#o.connections.close(id);
    await this.#o.engine.removeContainer(id).catch(() => {});
  }

  /** Removes every pooled container, ready or still starting. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#quiet?.end();
    await this.#engineKept?.close();
    await this.filled().catch(() => {});
    await Promise.all([...this.#pending]);
    await Promise.all(this.#ready.splice(0).map((id) => this.#discard(id)));
  }

  /** Starts refilling (after `after`, when given) unless a refill is already under way or due. */
  #kick(after?: Promise<void>): void {
    if (this.#refill || this.#closed) return;
    this.#refill = (after ?? Promise.resolve())
      .then(() => this.#fill())
      .finally(() => {
        this.#refill = undefined;
      });
  }

  /** One container at a time, so refilling never starves the claims it exists to serve. */
  async #fill(): Promise<void> {
    while (!this.#closed && this.#ready.length + this.#filling < this.#o.size) {
      this.#filling++;
      try {
        const id = await this.#startOne();
        if (this.#closed) await this.#o.engine.removeContainer(id).catch(() => {});
        else this.#ready.push(id);
      } catch (err) {
        this.#o.onError?.(err);
        return;
      } finally {
        this.#filling--;
      }
    }
  }

  async #startOne(): Promise<string> {
    const { engine, shape } = this.#o;
    const id = await engine.createContainer({
      ...shape,
      name: `${POOL_PREFIX}${randomBytes(6).toString("hex")}`,
      labels: { [LABEL.kind]: KIND_POOL, [LABEL.shape]: this.#key, [LABEL.owner]: this.#o.owner },
      env: {},
      volumes: [],
    });
    try {
      await engine.startContainer(id);
      const connection = await this.#o.connections.get(id);
      // Unclaimed, it stops itself once this process's connection has been gone a while.
      await connection.call({ type: "configure", orphanStopMs: POOL_ORPHAN_STOP_MS });
      if (this.#o.awaitRestore) await connection.call({ type: "state_report" });
      return id;
    } catch (err) {
      await this.#discard(id);
      throw err;
    }
  }
}

/**
 * A claimed sandbox's record files, tried again after a failure (POOL_RECORD_RETRY_MS): the
 * record is how other processes find the sandbox, and what keeps the sweeper from taking it for
 * an orphan once its claimer has exited. A sandbox deleted meanwhile needs nothing written.
 */
async function writeClaimFiles(
  engine: Engine,
  id: string,
  files: { record: SandboxRecord; env: Record<string, string>; agent: AgentSettings },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeSandboxFiles(engine, id, files);
      return;
    } catch (err) {
      if (!(await engine.inspectContainer(id).catch(() => true))) return;
      const pause = POOL_RECORD_RETRY_MS[attempt];
      if (pause === undefined) throw err;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
