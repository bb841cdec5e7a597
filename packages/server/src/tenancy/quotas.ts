/**
 * Quotas per organisation (design/server.md): `maxSandboxes` (sandboxes that exist, running or
 * stopped), `maxCpus` and `maxMemoryMb` (of running sandboxes), `createsPerMinute`. Checked
 * atomically: per organisation, checks run one at a time, each counting what the engine has
 * (the `kiln.org` label) plus the reservations of creates and starts still in flight in this
 * process, and a passing check reserves its share until its call ends. 50 parallel creates
 * against `maxSandboxes: 5` therefore make exactly 5. (Several server processes sharing one
 * database do not see each other's in-flight reservations: run one server per database.)
 */
import type { Kiln, SandboxInfo } from "@kiln/core";
import { HttpError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { ORG_LABEL } from "./org-scope.ts";

export const QUOTA_NAMES = ["maxSandboxes", "maxCpus", "maxMemoryMb", "createsPerMinute"] as const;
export type Quotas = Partial<Record<(typeof QUOTA_NAMES)[number], number>>;

/** core's DEFAULT_RESOURCES: what a create without `resources` gets. */
const DEFAULT_CPUS = 1;
const DEFAULT_MEMORY_MB = 1024;
const MINUTE_MS = 60_000;

/** The label a sandbox being created carries, so that its reservation is not counted twice. */
export const RESERVATION_LABEL = "kiln.reservation";

interface Reservation {
  /** The create's RESERVATION_LABEL value, or the id of the sandbox being started. */
  token: string;
  sandboxes: number;
  cpus: number;
  memoryMb: number;
}

export interface Shape {
  cpus?: number | undefined;
  memoryMb?: number | undefined;
}

export class QuotaGate {
  readonly #store: Store;
  readonly #kiln: Kiln;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #reserved = new Map<string, Set<Reservation>>();
  readonly #creates = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(store: Store, kiln: Kiln, now: () => number = Date.now) {
    this.#store = store;
    this.#kiln = kiln;
    this.#now = now;
  }

  /**
   * Reserves room for a create (`kind: "create"`) or a start of a stopped sandbox, or throws
   * 429 QUOTA_EXCEEDED / RATE_LIMITED. Call the returned release when the call has ended.
   */
  reserve(orgId: string, kind: "create" | "start", shape: Shape, token: string): Promise<() => void> {
    const previous = this.#locks.get(orgId) ?? Promise.resolve();
    const mine = previous.then(
      () => this.#check(orgId, kind, shape, token),
      () => this.#check(orgId, kind, shape, token),
    );
    const tail = mine.catch(() => {});
    this.#locks.set(orgId, tail);
    void tail.then(() => {
      if (this.#locks.get(orgId) === tail) this.#locks.delete(orgId);
    });
    return mine;
  }

  async #check(orgId: string, kind: "create" | "start", shape: Shape, token: string): Promise<() => void> {
    const quotas = ((await this.#store.getOrg(orgId))?.quotas ?? {}) as Quotas;
    const want: Reservation = {
      token,
      sandboxes: kind === "create" ? 1 : 0,
      cpus: shape.cpus ?? DEFAULT_CPUS,
      memoryMb: shape.memoryMb ?? DEFAULT_MEMORY_MB,
    };
    const now = this.#now();
    if (kind === "create" && quotas.createsPerMinute !== undefined) {
      const recent = (this.#creates.get(orgId) ?? []).filter((t) => t > now - MINUTE_MS);
      this.#creates.set(orgId, recent);
      if (recent.length >= quotas.createsPerMinute) {
        const wait = Math.max(1, Math.ceil(((recent[0] as number) + MINUTE_MS - now) / 1000));
        throw new HttpError(
          "RATE_LIMITED",
          `This organisation may create ${quotas.createsPerMinute} sandboxes a minute: retry in ${wait} s`,
          { retryAfter: wait },
        );
      }
    }
    if (quotas.maxSandboxes !== undefined || quotas.maxCpus !== undefined || quotas.maxMemoryMb !== undefined) {
      const infos: SandboxInfo[] = await this.#kiln.list({ labels: { [ORG_LABEL]: orgId } });
      const used = { sandboxes: infos.length, cpus: 0, memoryMb: 0 };
      // A create or start whose sandbox the engine already shows is counted once, from the engine.
      const seen = new Set<string>();
      for (const i of infos) {
        const reservation = i.labels[RESERVATION_LABEL];
        if (reservation !== undefined) seen.add(reservation);
        if (i.state !== "running") continue;
        seen.add(i.id);
        used.cpus += i.resources?.cpus ?? DEFAULT_CPUS;
        used.memoryMb += i.resources?.memoryMb ?? DEFAULT_MEMORY_MB;
      }
      for (const r of this.#reserved.get(orgId) ?? []) {
        if (seen.has(r.token)) continue;
        used.sandboxes += r.sandboxes;
        used.cpus += r.cpus;
        used.memoryMb += r.memoryMb;
      }
      const over = (name: string, limit: number | undefined, after: number, unit: string) => {
        if (limit !== undefined && after > limit) {
          throw new HttpError("QUOTA_EXCEEDED", `Quota ${name} is ${limit}${unit}: this would make it ${after}${unit}`);
        }
      };
      if (kind === "create") over("maxSandboxes", quotas.maxSandboxes, used.sandboxes + 1, "");
      over("maxCpus", quotas.maxCpus, used.cpus + want.cpus, "");
      over("maxMemoryMb", quotas.maxMemoryMb, used.memoryMb + want.memoryMb, " MB");
    }
    if (kind === "create" && quotas.createsPerMinute !== undefined) this.#creates.get(orgId)?.push(now);
    let set = this.#reserved.get(orgId);
    if (!set) {
      set = new Set();
      this.#reserved.set(orgId, set);
    }
    set.add(want);
    return () => {
      set.delete(want);
      if (set.size === 0 && this.#reserved.get(orgId) === set) this.#reserved.delete(orgId);
    };
  }
}
