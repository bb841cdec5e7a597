/**
 * Which sandbox a tool call runs in. `{ sandbox }`: always that one, owned by the caller.
 * `{ kiln }`: one per Mastra thread (or resource, when a call has no thread), made lazily with
 * `kiln.getOrCreate` under a name derived from the id, and released when idle or on close.
 */
import type { CreateSandboxOptions, Kiln, Sandbox } from "@kiln/core";
import { KilnError } from "@kiln/core";
import { DEFAULT_IDLE_TIMEOUT_MS, MIN_AUTO_STOP_MS, ORPHAN_DELETE_MS } from "../defaults.ts";
import { sandboxNameFor, uniqueSandboxName } from "./names.ts";

/** Use this sandbox for every call. The caller owns it: the tools never stop or delete it. */
export interface FixedSandboxBinding {
  sandbox: Sandbox;
}

/** Make sandboxes on demand, one per conversation. */
export interface PerConversationBinding {
  kiln: Kiln;
  /** Options for each sandbox the tools create (`name` is derived from the thread). @default {} */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Release a conversation's sandbox after this long without a tool call; `Infinity` keeps it
   * until `[Symbol.asyncDispose]()`. Also the sandbox's `autoStopMs` unless `sandboxOptions` sets
   * one. @default 600_000 (10 minutes)
   */
  idleTimeoutMs?: number;
}

export type SandboxBinding = FixedSandboxBinding | PerConversationBinding;

/** The ids Mastra gives a tool call: `context.agent.threadId` / `resourceId`. */
export interface ConversationIds {
  threadId?: string | undefined;
  resourceId?: string | undefined;
}

export interface SandboxProvider extends AsyncDisposable {
  /** Runs `work` with the conversation's sandbox; the sandbox is not released while it runs. */
  use<T>(ids: ConversationIds, work: (sandbox: Sandbox) => Promise<T>): Promise<T>;
}

export function sandboxProvider(binding: SandboxBinding): SandboxProvider {
  if ("sandbox" in binding && binding.sandbox) return new FixedSandbox(binding.sandbox);
  if ("kiln" in binding && binding.kiln) return new ConversationSandboxes(binding);
  throw new TypeError("createKilnTools: pass either { sandbox } or { kiln, sandboxOptions? }");
}

class FixedSandbox implements SandboxProvider {
  readonly #sandbox: Sandbox;
  constructor(sandbox: Sandbox) {
    this.#sandbox = sandbox;
  }
  use<T>(_ids: ConversationIds, work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    return work(this.#sandbox);
  }
  async [Symbol.asyncDispose](): Promise<void> {}
}

interface Entry {
  sandbox: Promise<Sandbox>;
  active: number;
  timer?: NodeJS.Timeout;
  /** True for the per-tool-set sandbox: its random name dies with this process. */
  anonymous: boolean;
}

/** Errors after which the cached handle is useless: the sandbox is gone or was stopped elsewhere. */
function isStaleHandle(err: unknown): boolean {
  return KilnError.isInstance(err) && (err.code === "SANDBOX_NOT_FOUND" || err.code === "SANDBOX_NOT_RUNNING");
}

/**
 * Release policy. A thread's sandbox is STOPPED: its name is derived from the thread id, so the
 * next message of that conversation (in this process or another) restarts it with its files
 * intact, and a stopped container costs no CPU or memory. The tool set's own sandbox (calls
 * without a thread or resource id) is DELETED: its name is random, so nobody could resume it.
 * Both hold if this process dies: the idle limit is also the sandbox's `autoStopMs`, and the tool
 * set's own sandbox gets an `autoDeleteMs`, enforced by Kiln whichever process is running.
 */
class ConversationSandboxes implements SandboxProvider {
  readonly #kiln: Kiln;
  readonly #options: Omit<CreateSandboxOptions, "name" | "signal">;
  readonly #idleMs: number;
  readonly #anonymousName = uniqueSandboxName();
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(binding: PerConversationBinding) {
    this.#kiln = binding.kiln;
    this.#idleMs = binding.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!(this.#idleMs > 0)) {
      throw new RangeError("idleTimeoutMs must be a positive number of milliseconds (or Infinity)");
    }
    // The same idle limit, enforced inside the sandbox too, so it holds if this process dies.
    const autoStopMs = Number.isFinite(this.#idleMs) ? Math.max(this.#idleMs, MIN_AUTO_STOP_MS) : undefined;
    this.#options = { ...(autoStopMs === undefined ? {} : { autoStopMs }), ...binding.sandboxOptions };
  }

  async use<T>(ids: ConversationIds, work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("These Kiln tools were disposed; create new ones with createKilnTools()");
    const key = ids.threadId || ids.resourceId;
    const name = key ? sandboxNameFor(key) : this.#anonymousName;
    for (let attempt = 1; ; attempt++) {
      const entry = this.#acquire(name, !key);
      try {
        return await work(await entry.sandbox);
      } catch (err) {
        if (!isStaleHandle(err)) throw err;
        // Stopped (auto-stop, another process) or deleted behind our back: look it up again,
        // which restarts or re-creates it, and try once more.
        if (this.#entries.get(name) === entry) this.#entries.delete(name);
        if (attempt > 1) throw err;
      } finally {
        entry.active -= 1;
        if (entry.active === 0 && this.#entries.get(name) === entry) this.#scheduleRelease(name, entry);
      }
    }
  }

  #acquire(name: string, anonymous: boolean): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      const options = anonymous ? { autoDeleteMs: ORPHAN_DELETE_MS, ...this.#options } : this.#options;
      const sandbox = this.#kiln.getOrCreate(name, options);
      entry = { sandbox, active: 0, anonymous };
      const created = entry;
      this.#entries.set(name, created);
      // A failed create must not stick: the next call tries again.
      sandbox.catch(() => {
        if (this.#entries.get(name) === created) this.#entries.delete(name);
      });
    }
    clearTimeout(entry.timer);
    entry.active += 1;
    return entry;
  }

  #scheduleRelease(name: string, entry: Entry): void {
    if (this.#idleMs === Number.POSITIVE_INFINITY) return;
    entry.timer = setTimeout(() => {
      if (entry.active > 0 || this.#entries.get(name) !== entry) return;
      this.#entries.delete(name);
      void release(entry).catch(() => {
        /* best effort: the sandbox may already be gone; the next call re-creates it */
      });
    }, this.#idleMs);
    entry.timer.unref();
  }

  /** Releases every sandbox these tools hold (stops thread sandboxes, deletes the tool set's own). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of entries) clearTimeout(entry.timer);
    const outcomes = await Promise.allSettled(entries.map(release));
    const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
    if (failures.length > 0) throw new AggregateError(failures, "Some Kiln sandboxes could not be released");
  }
}

async function release(entry: Entry): Promise<void> {
  let sandbox: Sandbox;
  try {
    sandbox = await entry.sandbox;
  } catch {
    return; // never created: nothing to release
  }
  try {
    if (entry.anonymous) await sandbox.delete();
    else await sandbox.stop();
  } catch (err) {
    if (!(KilnError.isInstance(err) && err.code === "SANDBOX_NOT_FOUND")) throw err;
  }
}
