/**
 * The client: creates, finds and lists sandboxes; owns the engine connection, the agent
 * connections, the runtime image, the warm pool and the background sweeper.
 */
import { randomBytes } from "node:crypto";
import { AgentConnections } from "./agent/connections.ts";
import { PortTunnel } from "./agent/port-tunnel.ts";
import { FIRST_SWEEP_DELAY_MS, SWEEP_INTERVAL_MS } from "./defaults.ts";
import { type DockerConnection, DockerEngine } from "./engine/docker/docker-engine.ts";
import type { ContainerStatus, Engine } from "./engine/engine.ts";
import {
  CREATING_PREFIX,
  containerNameFor,
  KIND_SANDBOX,
  LABEL,
  NAMED_PREFIX,
  prefixUserLabels,
} from "./engine/labels.ts";
import { ConflictError, InvalidArgumentError, SandboxNotFoundError, throwIfAborted } from "./errors.ts";
import {
  type BuildOptions,
  CustomImages,
  type DockerfileImageSpec,
  type ImageInfo,
  type ImageSpec,
} from "./images/custom-images.ts";
import { type EnsureOptions, RuntimeImages } from "./images/runtime-image.ts";
import { compatible, WarmPool } from "./pool/warm-pool.ts";
import { Previews } from "./preview/previews.ts";
import { RemoteKiln, remoteTarget } from "./remote/remote-kiln.ts";
import { type ValidCreate, validateCreate } from "./sandbox/create-options.ts";
import {
  isUnclaimedPool,
  RecordReader,
  recordInfo,
  type SandboxRecord,
  sandboxState,
  writeSandboxFiles,
} from "./sandbox/records.ts";
import { Sandbox, type SandboxServices } from "./sandbox/sandbox.ts";
import { Snapshots } from "./snapshots/snapshots.ts";
import { ownerAlive, processOwner, sweep } from "./sweeper.ts";
import type { CreateSandboxOptions, KilnOptions, SandboxInfo, SnapshotInfo, VolumeInfo } from "./types.ts";
import {
  checkKnownKeys,
  describe,
  optionalLabels,
  optionalNumber,
  optionalObject,
  optionalString,
  requireName,
  requireString,
} from "./validate.ts";
import { Volumes } from "./volumes/volumes.ts";

/** create({ name }) of a name in use: say how to reuse it or free it (a re-run after Ctrl-C hits this). */
function nameTaken(name: string, cause: unknown): ConflictError {
  return new ConflictError(
    `A sandbox named "${name}" already exists: use kiln.getOrCreate("${name}") to reuse it, ` +
      `or delete it first with (await kiln.get("${name}")).delete()`,
    { cause },
  );
}

/** Every option new Kiln() knows (add new ones here): anything else is refused by name, never ignored. */
// Every KilnOptions key (the record's type keeps the list complete): anything else is refused by name.
const KILN_OPTION_KEYS = Object.keys({
  docker: true,
  engine: true,
  image: true,
  pool: true,
  defaults: true,
  url: true,
  apiKey: true,
} satisfies Record<keyof KilnOptions, true>);

/**
 * The client: creates, finds and lists sandboxes, and owns what they share (the engine connection,
 * the agent connections, the warm pool, images, snapshots, volumes, previews). Local by default
 * (this machine's Docker engine); `new Kiln({ url })` or `KILN_URL` makes it a client of a Kiln
 * server with the same API. Nothing lives only in a Kiln: a new one in another process sees every
 * sandbox. `await using kiln = new Kiln()` closes it; its sandboxes keep running.
 *
 * @example
 * ```ts
 * await using kiln = new Kiln();
 * await using sandbox = await kiln.create({ language: "python" });
 * const execution = await sandbox.runCode("6 * 7");
 * console.log(execution.results[0]?.text); // "42"
 * ```
 */
export class Kiln implements AsyncDisposable {
  /** Snapshots taken with `sandbox.snapshot(name)`; create from one with `kiln.create({ snapshot })`. */
  readonly snapshots: { list(): Promise<SnapshotInfo[]>; delete(name: string): Promise<void> };
  /** Named volumes that outlive sandboxes; mount with `kiln.create({ volumes: [...] })`. */
  readonly volumes: {
    create(name: string): Promise<VolumeInfo>;
    list(): Promise<VolumeInfo[]>;
    delete(name: string): Promise<void>;
  };
  readonly images: {
    /** Builds the runtime image if missing and returns its tag. Never removes an image. */
    ensure(options?: EnsureOptions): Promise<string>;
    /**
     * Removes runtime images this Kiln version built earlier and nothing uses; never the current
     * one, this Kiln's `image`, another version's, or one in use. Also older tags of built images
     * (a rebuild keeps the previous one while a sandbox uses it) that nothing uses now. Returns the tags removed.
     */
    prune(): Promise<string[]>;
    /** Builds a custom image (declarative spec or Dockerfile); an unchanged one is found in milliseconds. */
    build(spec: ImageSpec | DockerfileImageSpec, options?: BuildOptions): Promise<{ name: string; tag: string }>;
    /** Custom images built with build(), newest tag per name. */
    list(): Promise<ImageInfo[]>;
    /** Removes a custom image; ConflictError while a sandbox uses it. */
    delete(name: string): Promise<void>;
  };
  /** The warm pool, when `options.pool` asked for one. */
  readonly pool?: {
    readonly size: number;
    /** Sandboxes ready to claim right now. */
    readonly ready: number;
    /** Resolves once the pool is full, or has stopped trying after a failure (see lastError). */
    filled(): Promise<void>;
    /** The last failure while filling, if any; the next claim tries again, and create() falls back to a cold start. */
    readonly lastError: unknown;
  };

  /** Preview URLs (sandbox.previewUrl): the local proxy, or serveAt() for a Kiln server's own routes. */
  readonly previews: Previews;
  /** @internal the engine behind this client (for tests and benchmarks). */
  readonly engine: Engine;
  readonly #image: string | undefined;
  readonly #defaults: Partial<CreateSandboxOptions>;
  readonly #connections: AgentConnections;
  readonly #records: RecordReader;
  readonly #snapshots: Snapshots;
  readonly #volumes: Volumes;
  readonly #runtime: RuntimeImages;
  readonly #custom: CustomImages;
  readonly #services: SandboxServices;
  #sweeper?: NodeJS.Timeout;
  #closed = false;
  /** One warm pool per configured shape (`pool: [...]`), with what it was configured for. */
  readonly #warm: { pool: Promise<WarmPool>; snapshot?: string; image?: string }[] = [];
  #poolError: unknown;
  /** Set for `new Kiln({ url })` (or KILN_URL): every public method delegates to the server. */
  readonly #remote: RemoteKiln | undefined;

  constructor(options: KilnOptions = {}) {
    checkKnownKeys("options", optionalObject("options", options), KILN_OPTION_KEYS);
    const remote = remoteTarget(options);
    this.#remote = remote && new RemoteKiln(remote, options);
    // A remote Kiln does no engine work in this process: no pool, no local defaults to check.
    const o = remote ? {} : optionalObject("options", options);
    this.#image = optionalString("options.image", o.image);
    this.#defaults = optionalObject("options.defaults", o.defaults) as Partial<CreateSandboxOptions>;
    // Fail fast on bad defaults rather than at the first create().
    validateCreate({}, this.#defaults);
    const pools = poolEntries(o.pool, this.#defaults);
    const poolSize = pools.reduce((sum, p) => sum + p.size, 0);
    this.engine =
      (o.engine as Engine | undefined) ??
      // KilnOptions types the connection without dockerode; the engine folder checks it.
      new DockerEngine(options.docker as DockerConnection | undefined, { firewallImage: () => this.#runtime.ensure() });
    this.#connections = new AgentConnections(this.engine);
    this.#records = new RecordReader(this.engine);
    this.#snapshots = new Snapshots(this.engine);
    this.#volumes = new Volumes(this.engine, () => this.#runtime.ensure());
    this.#runtime = new RuntimeImages(this.engine);
    this.#custom = new CustomImages(this.engine, this.#runtime);
    this.snapshots = {
      list: () => this.#snapshots.list(),
      delete: async (name) => {
        await this.#drain((entry) => entry.snapshot === name);
        await this.#snapshots.delete(name);
      },
    };
    this.volumes = {
      create: (name) => this.#volumes.create(name),
      list: () => this.#volumes.list(),
      delete: (name) => this.#volumes.delete(name),
    };
    this.images = {
      ensure: (opts) => this.#runtime.ensure(opts),
      prune: async () => [
        ...(await this.#runtime.prune({ keep: this.#image === undefined ? [] : [this.#image] })),
        ...(await this.#custom.pruneStale()),
      ],
      build: (spec, opts) => this.#custom.build(spec, opts),
      list: () => this.#custom.list(),
      delete: async (name) => {
        await this.#drain((entry) => entry.image === name);
        await this.#custom.delete(name);
      },
    };
    // A preview hit reaches the agent as a port_open frame, which is activity for autoStopMs.
    this.previews = new Previews(async (id, port) => PortTunnel.open(await this.#connections.get(id), port));
    this.#services = {
      previewUrl: (sandbox, port, opts) => this.previews.url(sandbox.id, port, opts),
      engine: this.engine,
      connections: this.#connections,
      records: this.#records,
      snapshot: (sandbox, name) => this.#snapshots.take(sandbox.id, name, () => this.#connections.get(sandbox.id)),
    };
    if (poolSize > 0) {
      const current: WarmPool[] = [];
      for (const entry of pools) {
        const warm = this.#startPool(entry.size, entry.shape);
        warm.then(
          (p) => {
            current.push(p);
          },
          (err) => {
            this.#poolError = err;
          },
        );
        this.#warm.push({ pool: warm, snapshot: entry.shape.snapshot, image: entry.image });
      }
      const self = this;
      this.pool = {
        size: poolSize,
        get ready() {
          return current.reduce((sum, p) => sum + p.readyCount, 0);
        },
        get lastError() {
          return self.#poolError;
        },
        filled: async () => {
          await Promise.all(self.#warm.map(async (w) => (await w.pool).filled()));
        },
      };
    }
    if (this.#remote) {
      this.snapshots = this.#remote.snapshots;
      this.volumes = this.#remote.volumes;
      this.images = this.#remote.images;
    }
  }

  async #startPool(size: number, shape: ValidCreate): Promise<WarmPool> {
    const image =
      shape.snapshot !== undefined
        ? await this.#snapshots.image(shape.snapshot)
        : shape.image !== undefined || this.#image !== undefined
          ? await this.#custom.resolve((shape.image ?? this.#image) as string)
          : await this.#runtime.ensure();
    const pool = new WarmPool({
      size,
      shape: {
        image,
        cpus: shape.resources.cpus,
        memoryMb: shape.resources.memoryMb,
        pids: shape.resources.pids,
        network: shape.network,
        runtime: shape.runtime,
        ...(shape.resources.diskMb === undefined ? {} : { diskMb: shape.resources.diskMb }),
      },
      owner: processOwner(),
      ...(shape.snapshot === undefined ? {} : { awaitRestore: true }),
      engine: this.engine,
      connections: this.#connections,
      records: this.#records,
      onError: (err) => {
        this.#poolError = err;
      },
    });
    this.#startSweeper();
    pool.start();
    return pool;
  }

  /** Creates a sandbox, started and ready: its agent answers before this resolves. */
  async create(options?: CreateSandboxOptions): Promise<Sandbox> {
    if (this.#remote) return this.#remote.create(options);
    const valid = validateCreate(options, this.#defaults);
    throwIfAborted(valid.signal, "create");
    this.#startSweeper();
    // A built image's name resolves to its tag; an image without Kiln's agent is refused.
    const image = valid.snapshot === undefined ? (valid.image ?? this.#image) : undefined;
    if (image !== undefined) valid.image = await this.#custom.resolve(image);
    const claimed = await this.#claim(valid);
    return claimed ?? this.#createCold(valid);
  }

  /** Closes (removes the members of) and forgets the pools `which` selects: their image is going away. */
  async #drain(which: (entry: { snapshot?: string; image?: string }) => boolean): Promise<void> {
    const drained = this.#warm.filter(which);
    for (const entry of drained) this.#warm.splice(this.#warm.indexOf(entry), 1);
    await Promise.all(drained.map(async (entry) => (await entry.pool.catch(() => undefined))?.close()));
  }

  /** A pooled sandbox when one is ready and the request fits its shape; else undefined. */
  async #claim(v: ValidCreate): Promise<Sandbox | undefined> {
    if (this.#warm.length === 0 || this.#closed) return undefined;
    let pool: WarmPool | undefined;
    for (const entry of this.#warm) {
      // A snapshot's pool serves that snapshot; an image's pool that image; the default pool the rest.
      if (entry.snapshot !== v.snapshot) continue;
      const candidate = await entry.pool.catch(() => undefined);
      if (!candidate) continue;
      // The request's image: a snapshot pool's own; else the (resolved) image asked for; none: the default pool's.
      let image: string;
      if (v.snapshot !== undefined) image = candidate.shape.image;
      else if (v.image !== undefined) image = v.image;
      else if (entry.image === undefined) image = candidate.shape.image;
      else continue;
      if (compatible({ ...v, snapshot: undefined }, image, candidate.shape)) {
        pool = candidate;
        break;
      }
    }
    if (!pool) return undefined;
    const record = this.#record(v);
    const id = await pool.claim(v, containerNameFor(v.name, randomBytes(6).toString("hex")), record).catch((err) => {
      if (err instanceof ConflictError && v.name !== undefined) {
        throw nameTaken(v.name, err);
      }
      throw err;
    });
    return id === undefined ? undefined : new Sandbox(id, record, this.#services, { image: pool.shape.image });
  }

  #record(v: ValidCreate): SandboxRecord {
    return {
      ...(v.name === undefined ? {} : { name: v.name }),
      labels: v.labels,
      language: v.language,
      createdAt: new Date().toISOString(),
      ...(v.autoStopMs === undefined ? {} : { autoStopMs: v.autoStopMs }),
      ...(v.autoDeleteMs === undefined ? {} : { autoDeleteMs: v.autoDeleteMs }),
      network: v.network,
      resources: { ...v.resources },
    };
  }

  async #createCold(v: ValidCreate): Promise<Sandbox> {
    const [image, volumes] = await Promise.all([
      v.snapshot !== undefined ? this.#snapshots.image(v.snapshot) : (v.image ?? this.#image ?? this.#runtime.ensure()),
      this.#volumes.resolve(v.volumes.map((m) => m.volume)),
    ]);
    throwIfAborted(v.signal, "create");
    const record = this.#record(v);
    const labels: Record<string, string> = {
      [LABEL.kind]: KIND_SANDBOX,
      [LABEL.name]: v.name ?? "",
      [LABEL.language]: v.language,
      [LABEL.createdAt]: record.createdAt,
      [LABEL.creator]: processOwner(),
      ...(v.autoStopMs === undefined ? {} : { [LABEL.autoStopMs]: String(v.autoStopMs) }),
      ...(v.autoDeleteMs === undefined ? {} : { [LABEL.autoDeleteMs]: String(v.autoDeleteMs) }),
      [LABEL.network]: typeof v.network === "string" ? v.network : JSON.stringify(v.network),
      [LABEL.resources]: JSON.stringify(v.resources),
      ...prefixUserLabels(v.labels),
    };
    let id: string;
    // An unnamed sandbox is created as kiln-creating-<hex> and renamed once ready: if this process
    // dies mid-create, the sweeper finds it by that name and its creator label (issue: orphans).
    const hex = randomBytes(6).toString("hex");
    const finalName = containerNameFor(v.name, hex);
    try {
      id = await this.engine.createContainer({
        name: v.name === undefined ? `${CREATING_PREFIX}${hex}` : finalName,
        image,
        labels,
        env: v.env,
        cpus: v.resources.cpus,
        memoryMb: v.resources.memoryMb,
        pids: v.resources.pids,
        ...(v.resources.diskMb === undefined ? {} : { diskMb: v.resources.diskMb }),
        network: v.network,
        runtime: v.runtime,
        volumes: v.volumes.map((m) => ({ ...m, volume: volumes.get(m.volume) as string })),
      });
    } catch (err) {
      if (err instanceof ConflictError && v.name !== undefined) {
        throw nameTaken(v.name, err);
      }
      throw err;
    }
    // From here on a failure or an abort must not leave a container behind.
    try {
      // A snapshot's image may carry the original sandbox's settings: this sandbox's replace them.
      if (v.snapshot !== undefined || v.autoStopMs !== undefined) {
        await writeSandboxFiles(this.engine, id, { env: v.env, agent: { autoStopMs: v.autoStopMs ?? null } });
      }
      // The agent's channel is opened while the container starts (over its stdio where it can be).
      // An engine without that (Kubernetes, or an image from an older Kiln) gets an exec once started.
      let startDone: (err?: unknown) => void = () => {};
      const started = new Promise<void>((resolve, reject) => {
        startDone = (err) => (err === undefined ? resolve() : reject(err));
      });
      started.catch(() => {});
      const connected = this.#connections.attach(id, started);
      connected.catch(() => {}); // awaited below, unless the start fails first
      await this.engine.startContainer(id).then(
        () => startDone(),
        (err: unknown) => {
          startDone(err ?? new Error("start failed"));
          throw err;
        },
      );
      throwIfAborted(v.signal, "create");
      await Promise.all([connected, v.name === undefined ? this.engine.renameContainer(id, finalName) : undefined]);
      throwIfAborted(v.signal, "create");
    } catch (err) {
      this.#connections.close(id);
      await this.engine.removeContainer(id).catch(() => {});
      throw err;
    }
    return new Sandbox(id, record, this.#services, { image });
  }

  /** Finds a sandbox by id (or unique id prefix of 12+ characters) or by name. */
  async get(idOrName: string): Promise<Sandbox> {
    if (this.#remote) return this.#remote.get(idOrName);
    if (typeof idOrName !== "string" || idOrName.length === 0 || idOrName.includes("\0")) {
      throw new InvalidArgumentError("idOrName", `must be a non-empty string, got ${describe(idOrName)}`);
    }
    const found = await this.#lookup(idOrName);
    if (!found) throw new SandboxNotFoundError(idOrName);
    return found.sandbox;
  }

  /** The sandbox and its engine status (from the same inspect), or undefined. */
  async #lookup(idOrName: string): Promise<{ sandbox: Sandbox; status: ContainerStatus } | undefined> {
    this.#startSweeper();
    const candidates: string[] = [];
    if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(idOrName)) candidates.push(`${NAMED_PREFIX}${idOrName}`);
    if (/^[0-9a-f]{12,64}$/.test(idOrName)) candidates.push(idOrName);
    for (const candidate of candidates) {
      const details = await this.engine.inspectContainer(candidate);
      if (!details || details.labels[LABEL.kind] === undefined || isUnclaimedPool(details)) continue;
      // An id lookup must not resolve to a named sandbox's container name by accident, and vice versa.
      if (candidate === idOrName && !details.id.startsWith(idOrName)) continue;
      const record = await this.#records.read(details, () => ownerAlive(details.labels[LABEL.owner]));
      if (record) return { sandbox: new Sandbox(details.id, record, this.#services), status: details.status };
    }
    return undefined;
  }

  /**
   * The sandbox named `name`, started if it was stopped; or a new one made with `options` when
   * there is none. Agents key a conversation's sandbox on this to continue across processes.
   */
  async getOrCreate(name: string, options: Omit<CreateSandboxOptions, "name"> = {}): Promise<Sandbox> {
    if (this.#remote) return this.#remote.getOrCreate(name, options);
    const valid = requireName("name", name);
    const existing = await this.#findNamed(valid);
    if (existing) return existing;
    try {
      return await this.create({ ...options, name: valid });
    } catch (err) {
      // Another caller created it between our lookup and our create: theirs is the one.
      if (err instanceof ConflictError) {
        const raced = await this.#findNamed(valid);
        if (raced) return raced;
      }
      throw err;
    }
  }

  async #findNamed(name: string): Promise<Sandbox | undefined> {
    const found = await this.#lookup(name);
    if (found && found.status !== "running") await found.sandbox.start();
    return found?.sandbox;
  }

  /** Every sandbox (running or not) carrying all the given labels. */
  async list(filter?: { labels?: Record<string, string> }): Promise<SandboxInfo[]> {
    if (this.#remote) return this.#remote.list(filter);
    const wanted = optionalLabels("filter.labels", optionalObject("filter", filter).labels) ?? {};
    this.#startSweeper();
    const containers = await this.engine.listContainers({ [LABEL.kind]: "" });
    const infos = await Promise.all(
      containers
        .filter((c) => !isUnclaimedPool(c))
        .map(async (c): Promise<SandboxInfo | undefined> => {
          const record = await this.#records.read(c, () => ownerAlive(c.labels[LABEL.owner])).catch(() => undefined);
          if (!record) return undefined;
          if (!Object.entries(wanted).every(([k, v]) => record.labels[k] === v)) return undefined;
          return {
            id: c.id,
            ...(record.name === undefined ? {} : { name: record.name }),
            state: sandboxState(c.status),
            labels: record.labels,
            createdAt: record.createdAt,
            image: c.image,
            ...recordInfo(record),
          };
        }),
    );
    return infos
      .filter((i): i is SandboxInfo => i !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** One sweep now: orphaned pool containers and expired auto-delete timers. */
  sweep() {
    if (this.#remote) return this.#remote.sweep();
    return sweep(this.engine, this.#records);
  }

  /** Drains the warm pool and closes connections; user sandboxes keep running. */
  async close(): Promise<void> {
    if (this.#remote) return this.#remote.close();
    if (this.#closed) return;
    this.#closed = true;
    await this.previews.close();
    clearInterval(this.#sweeper);
    await Promise.all(this.#warm.map(async (w) => (await w.pool.catch(() => undefined))?.close()));
    this.#connections.closeAll();
    await this.engine.close?.();
  }

  /** Same as close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #startSweeper(): void {
    if (this.#sweeper || this.#closed) return;
    const run = () => {
      if (this.#closed) return;
      this.sweep().catch(() => {
        /* the engine may be briefly unavailable; the next sweep retries */
      });
    };
    this.#sweeper = setInterval(run, SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
    // One sweep soon after this Kiln starts working, off the critical path of the call that
    // started it, so scripts that live only seconds reclaim what crashed runs left too.
    setTimeout(run, FIRST_SWEEP_DELAY_MS).unref();
  }
}

/** `pool`: `{ size }` (the default shape) or a list of `{ size, image?, snapshot? }`, one pool each. */
function poolEntries(
  value: unknown,
  defaults: Partial<CreateSandboxOptions>,
): { size: number; image?: string; shape: ValidCreate }[] {
  if (value === undefined || value === false) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.flatMap((item, i) => {
    const field = Array.isArray(value) ? `options.pool[${i}]` : "options.pool";
    const entry = optionalObject(field, item);
    checkKnownKeys(field, entry, ["size", "image", "snapshot"]);
    const size = optionalNumber(`${field}.size`, entry.size, { min: 0, max: 256 }) ?? 0;
    const given: CreateSandboxOptions = {};
    if (entry.image !== undefined) given.image = requireString(`${field}.image`, entry.image);
    if (entry.snapshot !== undefined) given.snapshot = requireName(`${field}.snapshot`, entry.snapshot);
    return size > 0
      ? [{ size, ...(given.image === undefined ? {} : { image: given.image }), shape: validateCreate(given, defaults) }]
      : [];
  });
}
