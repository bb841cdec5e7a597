/**
 * Recently resolved sandbox handles, so that a stream of calls on one sandbox does not pay an
 * engine inspect per request (core's Sandbox handles hold no state, and an operation on a
 * sandbox that was deleted or stopped meanwhile still fails with SandboxNotFound /
 * SandboxNotRunning from core). Entries live briefly and are dropped when this server deletes
 * the sandbox; a sandbox deleted elsewhere and a new one made under the same name within the
 * TTL is the one case that reaches the old one (and gets "not found").
 */
import type { Sandbox } from "@kiln/core";

export const HANDLE_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

export class HandleCache {
  readonly #entries = new Map<string, { sandbox: Sandbox; until: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: { ttlMs?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? HANDLE_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  get(key: string): Sandbox | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.sandbox;
  }

  set(key: string, sandbox: Sandbox): void {
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
    this.#entries.set(key, { sandbox, until: this.#now() + this.#ttlMs });
  }

  /** Drops every entry that resolves to this sandbox. */
  forget(id: string): void {
    for (const [key, entry] of this.#entries) if (entry.sandbox.id === id) this.#entries.delete(key);
  }
}
