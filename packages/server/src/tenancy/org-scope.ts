/**
 * An organisation's view of the one Kiln behind the server. Core's names are global, so an
 * organisation's sandbox, snapshot or volume named `dev` is `<orgId>.dev` in core (organisation
 * ids hold no dot, so the mapping is reversible), and every sandbox carries the label
 * `kiln.org=<orgId>` (the `kiln.` label prefix is reserved: callers cannot set or filter on it,
 * and the sandbox's own code cannot change engine labels or its root-only record). Another
 * organisation's object is not found, never forbidden. Routes reach Kiln only through this.
 *
 * Sandbox names take core's whole 63 characters: a name whose `<orgId>.<name>` would pass 62
 * characters is `<orgId>.<its start>-<12 hex of its SHA-256>` in core (exactly 63 characters, so
 * it never equals the plain form of another name), and the sandbox carries its own name in the
 * label `kiln.name`. Both forms start with the organisation's prefix and are computed from the
 * name: a lookup is one engine call, and another organisation never reaches them.
 */
import { createHash } from "node:crypto";
import {
  ConflictError,
  type CreateSandboxOptions,
  InvalidArgumentError,
  type Kiln,
  KilnError,
  type Sandbox,
  type SandboxInfo,
  SandboxNotFoundError,
  type SnapshotInfo,
  SnapshotNotFoundError,
  type VolumeInfo,
  VolumeNotFoundError,
} from "@kiln/core";
import type { Principal } from "../pipeline/principal.ts";
import { HandleCache } from "./handle-cache.ts";

/** Labels under this prefix are the server's own. */
export const RESERVED_LABEL_PREFIX = "kiln.";
export const ORG_LABEL = "kiln.org";
/** The sandbox's name in its organisation (its core name may be shortened). */
export const NAME_LABEL = "kiln.name";
/** Core's longest name (its NAME rule). */
const CORE_NAME_MAX = 63;
const NAME_HASH_CHARS = 12;
const ID = /^[0-9a-f]{12,64}$/;
/** Container id -> owning organisation, per Kiln. Ids are never reused, so entries never go stale. */
const OWNERS = new WeakMap<Kiln, Map<string, string | undefined>>();
const MAX_CACHED_OWNERS = 10_000;

export class OrgScope {
  readonly #kiln: Kiln;
  readonly #principal: Principal;
  readonly #prefix: string;
  readonly #handles: HandleCache;
  /** Set by the pipeline's quota step: the create's reservation token, carried as a label. */
  reservation?: string;

  constructor(kiln: Kiln, principal: Principal, handles: HandleCache = new HandleCache()) {
    this.#kiln = kiln;
    this.#principal = principal;
    this.#prefix = `${principal.orgId}.`;
    this.#handles = handles;
  }

  /** A message from core with this organisation's core names turned back into its own. */
  scrub(message: string): string {
    return message.split(this.#prefix).join("");
  }

  async create(body: Omit<CreateSandboxOptions, "signal">, signal?: AbortSignal): Promise<Sandbox> {
    for (const key of Object.keys(body.labels ?? {})) {
      if (key.startsWith(RESERVED_LABEL_PREFIX)) {
        throw new InvalidArgumentError(
          `labels.${key}`,
          `label keys starting with "${RESERVED_LABEL_PREFIX}" are reserved`,
        );
      }
    }
    const options: CreateSandboxOptions = {
      ...body,
      labels: {
        ...body.labels,
        [ORG_LABEL]: this.#principal.orgId,
        ...(body.name === undefined ? {} : { [NAME_LABEL]: body.name }),
        ...(this.reservation === undefined ? {} : { "kiln.reservation": this.reservation }),
      },
      ...(body.name === undefined ? {} : { name: this.#coreSandbox(body.name) }),
      ...(body.snapshot === undefined ? {} : { snapshot: this.#core(body.snapshot) }),
      ...(body.volumes === undefined
        ? {}
        : { volumes: body.volumes.map((v) => ({ ...v, volume: this.#core(v.volume) })) }),
      ...(signal === undefined ? {} : { signal }),
    };
    try {
      const sandbox = await this.#kiln.create(options);
      // The calls that follow a create (its first runCode) find it without an engine lookup.
      this.#handles.set(`${this.#principal.orgId}\0${sandbox.id}`, sandbox);
      ownersOf(this.#kiln).set(sandbox.id, this.#principal.orgId);
      return sandbox;
    } catch (err) {
      if (err instanceof ConflictError && body.name !== undefined) {
        throw new ConflictError(`A sandbox named "${body.name}" already exists`, { cause: err });
      }
      if (err instanceof SnapshotNotFoundError && body.snapshot !== undefined)
        throw new SnapshotNotFoundError(body.snapshot);
      throw err;
    }
  }

  /** This organisation's sandbox by id (or a 12+ character id prefix) or by name; else SandboxNotFoundError. */
  async get(idOrName: string): Promise<Sandbox> {
    const key = `${this.#principal.orgId}\0${idOrName}`;
    let found = this.#handles.get(key);
    if (!found) {
      // Ids first when it looks like one (what clients use most): one engine call.
      found = ID.test(idOrName)
        ? ((await this.#byId(idOrName)) ?? (await this.#byName(idOrName)))
        : await this.#byName(idOrName);
      if (found) this.#handles.set(key, found);
    }
    if (!found || (this.#principal.sandboxId !== undefined && found.id !== this.#principal.sandboxId)) {
      throw new SandboxNotFoundError(idOrName);
    }
    return found;
  }

  async delete(sandbox: Sandbox): Promise<void> {
    this.#handles.forget(sandbox.id);
    try {
      await sandbox.delete();
    } finally {
      this.#handles.forget(sandbox.id);
    }
  }

  async #byName(name: string): Promise<Sandbox | undefined> {
    return this.#kiln.get(this.#coreSandbox(name)).catch(notFoundAsUndefined);
  }

  async #byId(id: string): Promise<Sandbox | undefined> {
    const sandbox = await this.#kiln.get(id).catch(notFoundAsUndefined);
    if (!sandbox) return undefined;
    return (await this.#owner(sandbox)) === this.#principal.orgId ? sandbox : undefined;
  }

  /** The owning organisation: a label fixed at creation, so it is cached by container id. */
  async #owner(sandbox: Sandbox): Promise<string | undefined> {
    const owners = ownersOf(this.#kiln);
    if (owners.has(sandbox.id)) return owners.get(sandbox.id);
    const info = await sandbox.info().catch(notFoundAsUndefined);
    if (!info) return undefined;
    const owner = info.labels[ORG_LABEL];
    owners.set(sandbox.id, owner);
    return owner;
  }

  /** The answer to a create: what create() knew (no engine round trip), else the engine's info. */
  async createdInfo(sandbox: Sandbox): Promise<SandboxInfo> {
    const known = sandbox.infoAtCreate();
    return known === undefined ? this.info(sandbox) : this.view(known);
  }

  /** The sandbox's info in this organisation's terms: its own name, no reserved labels. */
  async info(sandbox: Sandbox): Promise<SandboxInfo> {
    try {
      return this.view(await sandbox.info());
    } catch (err) {
      if (err instanceof SandboxNotFoundError) throw new SandboxNotFoundError(this.#own(sandbox.name) ?? sandbox.id);
      throw err;
    }
  }

  view(info: SandboxInfo): SandboxInfo {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(info.labels)) if (!k.startsWith(RESERVED_LABEL_PREFIX)) labels[k] = v;
    const { id, name: coreName, ...rest } = info;
    const name = info.labels[NAME_LABEL] ?? this.#own(coreName);
    return { id, ...(name === undefined ? {} : { name }), ...rest, labels };
  }

  async list(labels: Record<string, string> = {}): Promise<SandboxInfo[]> {
    for (const key of Object.keys(labels)) {
      if (key.startsWith(RESERVED_LABEL_PREFIX)) {
        throw new InvalidArgumentError("label", `label keys starting with "${RESERVED_LABEL_PREFIX}" are reserved`);
      }
    }
    const infos = await this.#kiln.list({ labels: { ...labels, [ORG_LABEL]: this.#principal.orgId } });
    return infos
      .filter((i) => this.#principal.sandboxId === undefined || i.id === this.#principal.sandboxId)
      .map((i) => this.view(i));
  }

  async snapshot(sandbox: Sandbox, name: string): Promise<SnapshotInfo> {
    try {
      return this.#snapshotView(await sandbox.snapshot(this.#core(name)));
    } catch (err) {
      if (err instanceof ConflictError)
        throw new ConflictError(`A snapshot named "${name}" already exists`, { cause: err });
      throw err;
    }
  }

  async snapshots(): Promise<SnapshotInfo[]> {
    const all = await this.#kiln.snapshots.list();
    return all.filter((s) => s.name.startsWith(this.#prefix)).map((s) => this.#snapshotView(s));
  }

  async deleteSnapshot(name: string): Promise<void> {
    try {
      await this.#kiln.snapshots.delete(this.#core(name));
    } catch (err) {
      if (err instanceof SnapshotNotFoundError) throw new SnapshotNotFoundError(name);
      throw err;
    }
  }

  async createVolume(name: string): Promise<VolumeInfo> {
    try {
      return this.#volumeView(await this.#kiln.volumes.create(this.#core(name)));
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(this.scrub(err.message), { cause: err });
      throw err;
    }
  }

  async volumes(): Promise<VolumeInfo[]> {
    const all = await this.#kiln.volumes.list();
    return all.filter((v) => v.name.startsWith(this.#prefix)).map((v) => this.#volumeView(v));
  }

  async deleteVolume(name: string): Promise<void> {
    try {
      await this.#kiln.volumes.delete(this.#core(name));
    } catch (err) {
      if (err instanceof VolumeNotFoundError) throw new VolumeNotFoundError(name);
      throw err;
    }
  }

  #snapshotView(s: SnapshotInfo): SnapshotInfo {
    return { ...s, name: this.#own(s.name) ?? s.name };
  }

  #volumeView(v: VolumeInfo): VolumeInfo {
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(v.labels)) if (!k.startsWith(RESERVED_LABEL_PREFIX)) labels[k] = val;
    return { ...v, name: this.#own(v.name) ?? v.name, labels };
  }

  #core(name: string): string {
    const core = `${this.#prefix}${name}`;
    if (core.length > CORE_NAME_MAX) {
      throw new InvalidArgumentError(
        "name",
        `must be at most ${CORE_NAME_MAX - this.#prefix.length} characters for a snapshot or volume in this organisation`,
      );
    }
    return core;
  }

  /** A sandbox's core name: `<orgId>.<name>`, or its shortened form when that is too long. */
  #coreSandbox(name: string): string {
    const plain = `${this.#prefix}${name}`;
    if (plain.length < CORE_NAME_MAX) return plain;
    const hash = createHash("sha256").update(name).digest("hex").slice(0, NAME_HASH_CHARS);
    const keep = Math.max(0, CORE_NAME_MAX - this.#prefix.length - 1 - NAME_HASH_CHARS);
    return `${this.#prefix}${name.slice(0, keep)}-${hash}`;
  }

  #own(coreName: string | undefined): string | undefined {
    if (coreName === undefined) return undefined;
    return coreName.startsWith(this.#prefix) ? coreName.slice(this.#prefix.length) : coreName;
  }
}

function ownersOf(kiln: Kiln): Map<string, string | undefined> {
  let owners = OWNERS.get(kiln);
  if (!owners) {
    owners = new Map();
    OWNERS.set(kiln, owners);
  }
  if (owners.size >= MAX_CACHED_OWNERS) owners.clear();
  return owners;
}

function notFoundAsUndefined(err: unknown): undefined {
  if (KilnError.isInstance(err) && (err.code === "SANDBOX_NOT_FOUND" || err.code === "INVALID_ARGUMENT"))
    return undefined;
  throw err;
}
