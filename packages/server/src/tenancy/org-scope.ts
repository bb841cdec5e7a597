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
 *
 * Snapshot and volume names take the same 63 characters, shortened the same way. An image or
 * volume cannot be relabelled through core, so the user's name of a shortened one is kept in
 * the store (`engine_names`) for listing; a lookup by name computes the core name and needs no
 * store. Before this, those names were `<orgId>.<name>` up to 63 characters exactly: a name
 * whose plain form is 63 characters is looked up in that older form first (fallback), so
 * snapshots and volumes made then stay reachable under their names.
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
import type { Store } from "../store/store.ts";
import { HandleCache } from "./handle-cache.ts";

/** What OrgScope keeps in the store: the user's names of shortened snapshot and volume names. */
export type NameBook = Pick<Store, "rememberName" | "namesOf" | "forgetName">;
type StorageKind = "snapshot" | "volume";

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
  readonly #names: NameBook | undefined;
  /** Set by the pipeline's quota step: the create's reservation token, carried as a label. */
  reservation?: string;

  /** `names`: where shortened snapshot and volume names are remembered; without it, names must fit unshortened. */
  constructor(kiln: Kiln, principal: Principal, handles: HandleCache = new HandleCache(), names?: NameBook) {
    this.#kiln = kiln;
    this.#principal = principal;
    this.#prefix = `${principal.orgId}.`;
    this.#handles = handles;
    this.#names = names;
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
      ...(body.name === undefined ? {} : { name: this.#coreName(body.name) }),
      ...(body.snapshot === undefined ? {} : { snapshot: await this.#existing("snapshot", body.snapshot) }),
      ...(body.volumes === undefined
        ? {}
        : {
            volumes: await Promise.all(
              body.volumes.map(async (v) => ({ ...v, volume: await this.#existing("volume", v.volume) })),
            ),
          }),
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
    return this.#kiln.get(this.#coreName(name)).catch(notFoundAsUndefined);
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
    const conflict = `A snapshot named "${name}" already exists`;
    // An older, unshortened form of the name holds it already.
    if ((await this.#existing("snapshot", name)) !== this.#coreName(name)) throw new ConflictError(conflict);
    const core = await this.#remember("snapshot", name);
    try {
      return this.#snapshotView(await sandbox.snapshot(core), name);
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(conflict, { cause: err });
      throw err;
    }
  }

  async snapshots(): Promise<SnapshotInfo[]> {
    const all = (await this.#kiln.snapshots.list()).filter((s) => s.name.startsWith(this.#prefix));
    const names = await this.#namesOf("snapshot", all);
    return all.map((s) => this.#snapshotView(s, names.get(s.name)));
  }

  async deleteSnapshot(name: string): Promise<void> {
    const core = await this.#existing("snapshot", name);
    try {
      await this.#kiln.snapshots.delete(core);
    } catch (err) {
      if (err instanceof SnapshotNotFoundError) throw new SnapshotNotFoundError(name);
      throw err;
    }
    await this.#forget("snapshot", name, core);
  }

  async createVolume(name: string): Promise<VolumeInfo> {
    const conflict = `A volume named "${name}" already exists`;
    if ((await this.#existing("volume", name)) !== this.#coreName(name)) throw new ConflictError(conflict);
    const core = await this.#remember("volume", name);
    try {
      return this.#volumeView(await this.#kiln.volumes.create(core), name);
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(conflict, { cause: err });
      throw err;
    }
  }

  async volumes(): Promise<VolumeInfo[]> {
    const all = (await this.#kiln.volumes.list()).filter((v) => v.name.startsWith(this.#prefix));
    const names = await this.#namesOf("volume", all);
    return all.map((v) => this.#volumeView(v, names.get(v.name)));
  }

  async deleteVolume(name: string): Promise<void> {
    const core = await this.#existing("volume", name);
    try {
      await this.#kiln.volumes.delete(core);
    } catch (err) {
      if (err instanceof VolumeNotFoundError) throw new VolumeNotFoundError(name);
      throw err;
    }
    await this.#forget("volume", name, core);
  }

  #snapshotView(s: SnapshotInfo, name?: string): SnapshotInfo {
    return { ...s, name: name ?? this.#own(s.name) ?? s.name };
  }

  #volumeView(v: VolumeInfo, name?: string): VolumeInfo {
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(v.labels)) if (!k.startsWith(RESERVED_LABEL_PREFIX)) labels[k] = val;
    return { ...v, name: name ?? this.#own(v.name) ?? v.name, labels };
  }

  /**
   * A new snapshot's or volume's core name. A shortened one is remembered before the object is
   * made, so that a listing never shows an object whose name it cannot tell. Without a store,
   * a name must fit unshortened.
   */
  async #remember(kind: StorageKind, name: string): Promise<string> {
    const core = this.#coreName(name);
    if (core === `${this.#prefix}${name}`) return core;
    if (!this.#names) {
      throw new InvalidArgumentError(
        "name",
        `must be at most ${CORE_NAME_MAX - 1 - this.#prefix.length} characters for a ${kind} in this organisation`,
      );
    }
    await this.#names.rememberName({ orgId: this.#principal.orgId, kind, coreName: core, name });
    return core;
  }

  async #forget(kind: StorageKind, name: string, core: string): Promise<void> {
    if (core !== `${this.#prefix}${name}`) await this.#names?.forgetName(this.#principal.orgId, kind, core);
  }

  /** The users' names of the shortened ones among `objects` (read from the store only when there are any). */
  async #namesOf(kind: StorageKind, objects: readonly { name: string }[]): Promise<Map<string, string>> {
    if (!this.#names || !objects.some((o) => o.name.length === CORE_NAME_MAX)) return new Map();
    return this.#names.namesOf(this.#principal.orgId, kind);
  }

  /**
   * The core name of an existing snapshot or volume: its current form, or, for a name whose
   * plain `<orgId>.<name>` is exactly 63 characters, that plain form when such an object was
   * made before names were shortened (one engine list, for names of that length only).
   */
  async #existing(kind: StorageKind, name: string): Promise<string> {
    const plain = `${this.#prefix}${name}`;
    if (plain.length === CORE_NAME_MAX) {
      const all = kind === "snapshot" ? await this.#kiln.snapshots.list() : await this.#kiln.volumes.list();
      if (all.some((o) => o.name === plain)) return plain;
    }
    return this.#coreName(name);
  }

  /** A sandbox's, snapshot's or volume's core name: `<orgId>.<name>`, or its shortened form when that is too long. */
  #coreName(name: string): string {
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
