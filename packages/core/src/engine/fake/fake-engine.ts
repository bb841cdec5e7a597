/**
 * An in-memory Engine for fast tests of what sits above the engine (the warm pool, the sweeper,
 * ConversationSandboxes): `new Kiln({ engine: new FakeEngine(), image: FAKE_RUNTIME_IMAGE })`.
 * Runs in milliseconds, so races can be driven exactly (see `hold`).
 *
 * It behaves like the Docker engine in what those modules rely on:
 * - container names are unique: create or rename onto a taken name throws ConflictError;
 * - inspect finds a container by full id, id prefix or name; list filters by labels (an empty
 *   value matches any value), stopped containers included;
 * - remove is idempotent and has one winner: false when already gone or being removed;
 * - start and stop are idempotent; stopping closes every process channel into the container;
 * - putArchive / getArchive store and return files (tar in, tar out; undefined for a missing path);
 * - openProcess fails with ConflictError on a container that is not running (Docker's 409), else
 *   connects to a fake agent that answers the wire protocol's `hello`, `ping`, `set_env` and
 *   `configure` with `ok` (enough for connections, pool claims and lifecycle);
 * - an image in use by a container cannot be removed (ConflictError).
 *
 * Where it differs: no process runs (exec, runCode and file calls get an `error` frame with code
 * ENOSYS), the agent's own auto-stop clock does not run, resources, networks and volumes are
 * recorded but not enforced, and builds only record the tag.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import { Duplex, Readable } from "node:stream";
import { extract, pack } from "tar-stream";
import { encodeFrame, FrameDecoder } from "../../agent/frames.ts";
import { ConflictError, EngineError, SandboxNotFoundError } from "../../errors.ts";
import type {
  ContainerDetails,
  ContainerSpec,
  ContainerStatus,
  ContainerSummary,
  Engine,
  EngineInfo,
  ImageSummary,
  ProcessChannel,
  VolumeSummary,
} from "../engine.ts";

/** The image a FakeEngine has from the start; pass it as `new Kiln({ image })`. */
export const FAKE_RUNTIME_IMAGE = "kiln-runtime:fake";

interface FakeContainer {
  id: string;
  name: string;
  spec: ContainerSpec;
  status: ContainerStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  files: Map<string, Buffer>;
  channels: Set<Duplex>;
  removing: boolean;
}

/** Agent requests the fake agent answers with `ok`. */
const AGENT_OK = new Set(["hello", "ping", "set_env", "configure"]);

export class FakeEngine implements Engine {
  readonly containers = new Map<string, FakeContainer>();
  readonly images = new Map<string, Record<string, string>>([[FAKE_RUNTIME_IMAGE, { "kiln.image": "runtime" }]]);
  readonly volumes = new Map<string, VolumeSummary>();
  /** Every call, in order, as "method arg" (for tests that assert what reached the engine). */
  readonly calls: string[] = [];
  readonly #holds = new Map<string, { reached: () => void; release: Promise<void> }[]>();
  readonly #failures = new Map<string, number>();

  /**
   * Makes the next call of `method` wait until `release()` is called: `reached` resolves when the
   * call arrives. Drives races exactly (a claim while the pool drains, two owners at once).
   */
  hold(method: keyof Engine): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => {
      reached = r;
    });
    const releaseP = new Promise<void>((r) => {
      release = r;
    });
    const queue = this.#holds.get(method) ?? [];
    queue.push({ reached, release: releaseP });
    this.#holds.set(method, queue);
    return { reached: reachedP, release };
  }

  /** Makes the next `times` calls of `method` fail with an EngineError: an engine hiccup. */
  failNext(method: keyof Engine, times = 1): void {
    this.#failures.set(method, (this.#failures.get(method) ?? 0) + times);
  }

  async #enter(method: keyof Engine, arg = ""): Promise<void> {
    this.calls.push(arg ? `${method} ${arg}` : method);
    const hold = this.#holds.get(method)?.shift();
    // Like a real engine call, never synchronous: callers interleave at every call.
    await Promise.resolve();
    if (hold) {
      hold.reached();
      await hold.release;
    }
    const failures = this.#failures.get(method) ?? 0;
    if (failures > 0) {
      this.#failures.set(method, failures - 1);
      throw new EngineError(`${method}: the engine failed (FakeEngine.failNext)`);
    }
  }

  #find(idOrName: string): FakeContainer | undefined {
    const byId = this.containers.get(idOrName);
    if (byId) return byId;
    for (const c of this.containers.values()) if (c.name === idOrName) return c;
    if (idOrName.length >= 12) for (const c of this.containers.values()) if (c.id.startsWith(idOrName)) return c;
    return undefined;
  }

  #get(id: string, what: string): FakeContainer {
    const c = this.#find(id);
    if (!c) throw new SandboxNotFoundError(id, { cause: new EngineError(`${what}: no such container`) });
    return c;
  }

  async ping(): Promise<void> {
    await this.#enter("ping");
  }

  async info(): Promise<EngineInfo> {
    await this.#enter("info");
    return {
      arch: "x86_64",
      os: "linux",
      supportsDiskQuota: false,
      capsDiskByDefault: false,
      storage: "memory (FakeEngine)",
      runtimes: ["runc"],
      memoryBytes: 64 * 1024 ** 3,
      cpus: 16,
    };
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    await this.#enter("createContainer", spec.name);
    if (this.#find(spec.name)) throw new ConflictError(`The name "${spec.name}" is already taken`);
    if (!this.images.has(spec.image)) throw new EngineError(`create container: no such image: ${spec.image}`);
    const id = randomBytes(32).toString("hex");
    this.containers.set(id, {
      id,
      name: spec.name,
      spec: structuredClone(spec),
      status: "created",
      createdAt: new Date().toISOString(),
      files: new Map(),
      channels: new Set(),
      removing: false,
    });
    return id;
  }

  async startContainer(id: string): Promise<void> {
    await this.#enter("startContainer", id);
    const c = this.#get(id, "start container");
    if (c.status === "running") return;
    c.status = "running";
    c.startedAt = new Date().toISOString();
  }

  async stopContainer(id: string, _timeoutMs: number): Promise<void> {
    await this.#enter("stopContainer", id);
    const c = this.#find(id);
    if (c?.status !== "running") return;
    this.#exit(c);
  }

  /** The container's main process ends (a crash, an OOM kill, the agent's auto-stop). */
  exit(id: string): void {
    const c = this.#find(id);
    if (c && c.status === "running") this.#exit(c);
  }

  #exit(c: FakeContainer): void {
    c.status = "exited";
    c.finishedAt = new Date().toISOString();
    for (const channel of c.channels) channel.destroy();
    c.channels.clear();
  }

  async removeContainer(id: string): Promise<boolean> {
    await this.#enter("removeContainer", id);
    const c = this.#find(id);
    if (!c || c.removing) return false;
    c.removing = true;
    // Docker's removal takes a moment; a second remove meanwhile loses (returns false).
    await Promise.resolve();
    this.#exit(c);
    this.containers.delete(c.id);
    return true;
  }

  async pullImage(ref: string): Promise<boolean> {
    await this.#enter("pullImage", ref);
    return false;
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.#enter("renameContainer", `${id} ${name}`);
    const c = this.#get(id, "rename container");
    const other = this.#find(name);
    if (other && other !== c) throw new ConflictError(`The name "${name}" is already taken`);
    c.name = name;
  }

  async inspectContainer(idOrName: string): Promise<ContainerDetails | undefined> {
    await this.#enter("inspectContainer", idOrName);
    const c = this.#find(idOrName);
    if (!c) return undefined;
    return {
      ...this.#summary(c),
      ...(c.startedAt ? { startedAt: c.startedAt } : {}),
      ...(c.finishedAt ? { finishedAt: c.finishedAt } : {}),
      oomKilled: false,
    };
  }

  #summary(c: FakeContainer): ContainerSummary {
    return {
      id: c.id,
      name: c.name,
      image: c.spec.image,
      labels: { ...c.spec.labels },
      status: c.status,
      createdAt: c.createdAt,
    };
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    await this.#enter("listContainers");
    return [...this.containers.values()]
      .filter((c) => Object.entries(labels).every(([k, v]) => (v === "" ? k in c.spec.labels : c.spec.labels[k] === v)))
      .map((c) => this.#summary(c));
  }

  async putArchive(id: string, path: string, tar: Readable | Buffer): Promise<void> {
    await this.#enter("putArchive", `${id} ${path}`);
    const c = this.#get(id, "copy into container");
    const untar = extract();
    const done = new Promise<void>((resolve, reject) => {
      untar.on("finish", resolve);
      untar.on("error", reject);
    });
    untar.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: unknown) => {
        chunks.push(chunk as Buffer);
      });
      stream.on("end", () => {
        if (header.type === "file") c.files.set(posix.join(path, header.name), Buffer.concat(chunks));
        next();
      });
    });
    (Buffer.isBuffer(tar) ? Readable.from([tar]) : tar).pipe(untar);
    await done;
  }

  async getArchive(id: string, path: string): Promise<Readable | undefined> {
    await this.#enter("getArchive", `${id} ${path}`);
    const c = this.#get(id, "copy from container");
    const entries = [...c.files].filter(([p]) => p === path || p.startsWith(`${path}/`));
    if (entries.length === 0) return undefined;
    const archive = pack();
    for (const [p, content] of entries) archive.entry({ name: posix.relative(posix.dirname(path), p) }, content);
    archive.finalize();
    return Readable.from(archive);
  }

  async openProcess(id: string, _argv: string[]): Promise<ProcessChannel> {
    await this.#enter("openProcess", id);
    const c = this.#get(id, "exec");
    if (c.status !== "running") throw new ConflictError(`exec: container ${id} is not running`);
    const { host, agent } = duplexPair();
    const decoder = new FrameDecoder();
    agent.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const { id: requestId, type } = frame.header;
        agent.write(
          AGENT_OK.has(type)
            ? encodeFrame({ type: "ok", id: requestId })
            : encodeFrame({ type: "error", id: requestId, code: "ENOSYS", message: `FakeEngine: no ${type}` }),
        );
      }
    });
    c.channels.add(host);
    host.on("close", () => c.channels.delete(host));
    return { stream: host, stderr: () => "", close: () => host.destroy() };
  }

  async imageExists(ref: string): Promise<boolean> {
    await this.#enter("imageExists", ref);
    return this.images.has(ref);
  }

  async buildImage(context: Readable, tag: string, onProgress: (line: string) => void): Promise<void> {
    await this.#enter("buildImage", tag);
    for await (const _ of context) {
      // consumed like a real build context; its content is not interpreted
    }
    onProgress(`FakeEngine: built ${tag}`);
    this.images.set(tag, { "kiln.image": "runtime" });
  }

  async importImage(rootfs: Readable, tag: string): Promise<void> {
    await this.#enter("importImage", tag);
    for await (const _ of rootfs) {
      // consumed
    }
    this.images.set(tag, {});
  }

  async commitContainer(id: string, tag: string, labels: Record<string, string>): Promise<string> {
    await this.#enter("commitContainer", `${id} ${tag}`);
    const c = this.#get(id, "commit");
    this.images.set(tag, { ...this.images.get(c.spec.image), ...labels });
    return `sha256:${randomBytes(32).toString("hex")}`;
  }

  async listImages(labels: Record<string, string>): Promise<ImageSummary[]> {
    await this.#enter("listImages");
    return [...this.images]
      .filter(([, l]) => Object.entries(labels).every(([k, v]) => (v === "" ? k in l : l[k] === v)))
      .map(([tag, l]) => ({
        id: tag,
        tags: [tag],
        labels: { ...l },
        createdAt: new Date(0).toISOString(),
        sizeBytes: 0,
      }));
  }

  async removeImage(ref: string): Promise<void> {
    await this.#enter("removeImage", ref);
    if ([...this.containers.values()].some((c) => c.spec.image === ref)) {
      throw new ConflictError(`${ref} is in use by a sandbox: delete that sandbox first`);
    }
    this.images.delete(ref);
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<VolumeSummary> {
    await this.#enter("createVolume", name);
    if (this.volumes.has(name)) throw new ConflictError(`volume ${name} exists`);
    const volume = { name, labels: { ...labels }, createdAt: new Date().toISOString() };
    this.volumes.set(name, volume);
    return volume;
  }

  async listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]> {
    await this.#enter("listVolumes");
    return [...this.volumes.values()].filter((v) =>
      Object.entries(labels).every(([k, val]) => (val === "" ? k in v.labels : v.labels[k] === val)),
    );
  }

  async inspectVolume(name: string): Promise<VolumeSummary | undefined> {
    await this.#enter("inspectVolume", name);
    return this.volumes.get(name);
  }

  async removeVolume(name: string): Promise<void> {
    await this.#enter("removeVolume", name);
    this.volumes.delete(name);
  }
}

/** One end of an in-memory pipe: what it writes, the other end reads. */
class PipeEnd extends Duplex {
  other?: PipeEnd;
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.other && !this.other.destroyed) this.other.push(chunk);
    done();
  }
  override _final(done: (err?: Error | null) => void): void {
    if (this.other && !this.other.destroyed) this.other.push(null);
    done();
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.other && !this.other.destroyed) {
      this.other.push(null);
      this.other.destroy();
    }
    done(err);
  }
}

/** Two connected in-memory streams: what one writes, the other reads. */
function duplexPair(): { host: Duplex; agent: Duplex } {
  const host = new PipeEnd();
  const agent = new PipeEnd();
  host.other = agent;
  agent.other = host;
  return { host, agent };
}
