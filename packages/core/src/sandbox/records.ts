/**
 * A sandbox's metadata, wherever the engine keeps it. Cold-created sandboxes carry it in their
 * container labels. Claimed pool containers were labelled before they had a user, so their
 * metadata lives in `/etc/kiln/sandbox.json` inside the container (root-only, written through
 * the engine's archive API, so the sandbox's own code can neither read nor forge it) and their
 * environment in `/etc/kiln/env.json` (readable by the agent, which applies it).
 * Either way it lives with the engine: a new Kiln in a new process sees the same thing.
 */
import { Readable } from "node:stream";
import { json } from "node:stream/consumers";
import { extract, pack } from "tar-stream";
import { DEFAULT_RESOURCES } from "../defaults.ts";
import type { ContainerSummary, Engine } from "../engine/engine.ts";
import { KIND_POOL, KIND_SANDBOX, LABEL, POOL_PREFIX, prefixUserLabels, userLabels } from "../engine/labels.ts";
import type { Language, SandboxInfo, SandboxState } from "../types.ts";

export const RECORD_DIR = "/etc/kiln";
const RECORD_FILE = "sandbox.json";
const ENV_FILE = "env.json";
const AGENT_FILE = "agent.json";

export interface SandboxRecord {
  name?: string;
  labels: Record<string, string>;
  language: Language;
  createdAt: string;
  autoStopMs?: number;
  autoDeleteMs?: number;
  /** Absent on sandboxes made before Kiln recorded it: read as the defaults. */
  network?: SandboxInfo["network"];
  resources?: SandboxInfo["resources"];
}

/** What info() and list() report beyond the record's own fields. */
export function recordInfo(record: SandboxRecord): Pick<SandboxInfo, "language" | "network" | "resources"> {
  return {
    language: record.language,
    network: record.network ?? "none",
    resources: record.resources ?? { ...DEFAULT_RESOURCES },
  };
}

function parseJsonLabel<T>(value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as T;
  } catch {
    return undefined;
  }
}

/** True for a pool container no user has claimed yet: invisible to list()/get(). */
export function isUnclaimedPool(container: { name: string; labels: Record<string, string> }): boolean {
  return container.labels[LABEL.kind] === KIND_POOL && container.name.startsWith(POOL_PREFIX);
}

export function recordFromLabels(labels: Record<string, string>, createdAt: string): SandboxRecord {
  const number = (key: string) => (labels[key] === undefined ? undefined : Number(labels[key]));
  return {
    name: labels[LABEL.name] || undefined,
    labels: userLabels(labels),
    language: (labels[LABEL.language] as Language | undefined) ?? "python",
    createdAt: labels[LABEL.createdAt] ?? createdAt,
    autoStopMs: number(LABEL.autoStopMs),
    autoDeleteMs: number(LABEL.autoDeleteMs),
    network:
      labels[LABEL.network] === "none" || labels[LABEL.network] === "egress"
        ? (labels[LABEL.network] as "none" | "egress")
        : parseJsonLabel(labels[LABEL.network]),
    resources: parseJsonLabel(labels[LABEL.resources]),
  };
}

/** The labels a cold create gives a sandbox with this record (recordFromLabels reads them back). */
export function labelsFromRecord(record: SandboxRecord, creator: string): Record<string, string> {
  return {
    [LABEL.kind]: KIND_SANDBOX,
    [LABEL.name]: record.name ?? "",
    [LABEL.language]: record.language,
    [LABEL.createdAt]: record.createdAt,
    [LABEL.creator]: creator,
    ...(record.autoStopMs === undefined ? {} : { [LABEL.autoStopMs]: String(record.autoStopMs) }),
    ...(record.autoDeleteMs === undefined ? {} : { [LABEL.autoDeleteMs]: String(record.autoDeleteMs) }),
    ...(record.network === undefined
      ? {}
      : { [LABEL.network]: typeof record.network === "string" ? record.network : JSON.stringify(record.network) }),
    ...(record.resources === undefined ? {} : { [LABEL.resources]: JSON.stringify(record.resources) }),
    ...prefixUserLabels(record.labels),
  };
}

/**
 * Files under /etc/kiln, written as root through the engine's archive API (running or stopped):
 * `sandbox.json` (root-only: a claimed pool sandbox's record), `env.json` (the sandbox's
 * environment, applied by the agent) and `agent.json` (the agent's settings, e.g. autoStopMs).
 */
export async function writeSandboxFiles(
  engine: Engine,
  id: string,
  files: { record?: SandboxRecord; env?: Record<string, string>; agent?: AgentSettings },
): Promise<void> {
  const archive = pack();
  const mtime = new Date();
  const add = (name: string, mode: number, value: unknown) =>
    archive.entry({ name, mode, uid: 0, gid: 0, mtime }, JSON.stringify(value));
  if (files.record) add(RECORD_FILE, 0o600, files.record);
  if (files.env) add(ENV_FILE, 0o644, files.env);
  if (files.agent) add(AGENT_FILE, 0o644, files.agent);
  archive.finalize();
  await engine.putArchive(id, RECORD_DIR, Readable.from(archive));
}

/** What the agent reads from /etc/kiln/agent.json at start (and takes inline with `configure`). */
export interface AgentSettings {
  autoStopMs: number | null;
}

async function readClaimRecord(engine: Engine, id: string): Promise<SandboxRecord | undefined> {
  const archive = await engine.getArchive(id, `${RECORD_DIR}/${RECORD_FILE}`);
  if (!archive) return undefined;
  const untar = extract();
  let record: SandboxRecord | undefined;
  untar.on("entry", (_header, stream, next) => {
    json(stream).then(
      (value) => {
        record = value as SandboxRecord;
        next();
      },
      () => next(),
    );
  });
  const finished = new Promise<void>((resolve, reject) => {
    untar.on("finish", resolve);
    untar.on("error", reject);
  });
  archive.pipe(untar);
  await finished;
  return record;
}

/** How long a lookup waits for the record of a sandbox another live process has just claimed. */
const RECORD_WAIT_MS = 2_000;

/**
 * Reads records, caching claimed-pool records by container id: a record never changes after
 * the claim, so the cache is always right while the container exists.
 */
export class RecordReader {
  readonly #engine: Engine;
  readonly #claimed = new Map<string, SandboxRecord>();
  /** Record files a claim writes in the background (WarmPool), by id, until written. */
  readonly #writes = new Map<string, () => Promise<void>>();

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  remember(id: string, record: SandboxRecord): void {
    this.#claimed.set(id, record);
  }

  forget(id: string): void {
    this.#claimed.delete(id);
    this.#writes.delete(id);
  }

  /**
   * Registers the background write of a claimed sandbox's files. The returned function runs it
   * (once: later calls share the first; not at all once the sandbox is forgotten, i.e. deleted)
   * and is what the pool calls when its quiet window ends; `written(id)` calls it sooner when an
   * operation needs the files in place.
   */
  deferWrite(id: string, write: () => Promise<void>): () => Promise<void> {
    let running: Promise<void> | undefined;
    const run = () => {
      // Forgotten (deleted) before it ran: nothing to write.
      running ??=
        this.#writes.get(id) === run
          ? write().finally(() => {
              if (this.#writes.get(id) === run) this.#writes.delete(id);
            })
          : Promise.resolve();
      return running;
    };
    this.#writes.set(id, run);
    return run;
  }

  /**
   * Resolves once the sandbox's record files are in the container, writing them now if a claim
   * deferred them: stop, start and snapshot need them (the agent reads its environment and
   * settings from them at a restart; another process reads the record). A failed write is the
   * pool's to report; the caller's operation goes on and meets the same engine.
   */
  async written(id: string): Promise<void> {
    await this.#writes
      .get(id)?.()
      .catch(() => {});
  }

  /**
   * The container's record. A claimed pool member's is a file its claimer writes after the claim
   * (WarmPool's quiet window): with `pending` given and true (its claimer is alive), a record not
   * there yet is waited for, up to RECORD_WAIT_MS, so another process finds a sandbox as soon as
   * its create has returned.
   */
  async read(
    container: { id: string; labels: Record<string, string>; createdAt: string },
    pending?: () => boolean,
  ): Promise<SandboxRecord | undefined> {
    if (container.labels[LABEL.kind] !== KIND_POOL) return recordFromLabels(container.labels, container.createdAt);
    const cached = this.#claimed.get(container.id);
    if (cached) return cached;
    const deadline = Date.now() + RECORD_WAIT_MS;
    let record = await readClaimRecord(this.#engine, container.id);
    while (!record && pending?.() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      record = await readClaimRecord(this.#engine, container.id);
    }
    if (record) this.#claimed.set(container.id, record);
    return record;
  }
}

export function sandboxState(status: ContainerSummary["status"]): SandboxState {
  switch (status) {
    case "running":
    case "restarting":
      return "running";
    case "paused":
      return "paused";
    case "created":
    case "exited":
      return "stopped";
    default:
      return "error";
  }
}
