/**
 * Which sandbox a tool call runs in. Either the one sandbox the caller gave, or one sandbox per
 * LangGraph thread, created lazily with `kiln.getOrCreate(name)` under a name derived from the
 * thread id, so the same conversation finds the same sandbox again, even after a restart.
 */
import { type CreateSandboxOptions, type Kiln, KilnError, type Sandbox } from "@kiln/core";
import { sandboxNameForThread, sandboxNameForToolSet } from "./sandbox-name.ts";

export interface SandboxSource {
  /** Runs `work` with the sandbox of this conversation (`threadId` undefined: not in a thread). */
  use<T>(threadId: string | undefined, work: (sandbox: Sandbox) => Promise<T>): Promise<T>;
  /** Releases every sandbox this source created. */
  close(): Promise<void>;
}

/** `{ sandbox }`: every call uses it; the caller owns it, so close() leaves it alone. */
export class FixedSandbox implements SandboxSource {
  readonly #sandbox: Sandbox;
  constructor(sandbox: Sandbox) {
    this.#sandbox = sandbox;
  }
  use<T>(_threadId: string | undefined, work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    return work(this.#sandbox);
  }
  async close(): Promise<void> {}
}

export type ReleaseMode = "stop" | "delete";

export interface ThreadSandboxesOptions {
  sandboxOptions: Omit<CreateSandboxOptions, "name" | "signal">;
  /** 0 or Infinity: never release for idleness. */
  idleTimeoutMs: number;
  /** How a thread's sandbox is released, when idle and on close(). */
  release: ReleaseMode;
  namePrefix: string;
}

/** Labels on every sandbox this adapter creates, so `kiln.list({ labels })` finds them. */
export const ADAPTER_LABEL = { "kiln-adapter": "langchain" } as const;
export const THREAD_LABEL = "langchain-thread-id";
/** Core's limit on label values. */
const MAX_LABEL_VALUE = 1024;

interface Entry {
  readonly name: string;
  /** The tool set's own sandbox (no thread): nothing can find it after close(), so it is deleted. */
  readonly ephemeral: boolean;
  readonly sandbox: Promise<Sandbox>;
  /** Calls running in it now; it is never released for idleness while this is above 0. */
  active: number;
  timer?: NodeJS.Timeout;
}

/** The sandbox went away under us (deleted, or stopped by someone else): opening it again is safe. */
function isGone(err: unknown): boolean {
  return KilnError.isInstance(err) && (err.code === "SANDBOX_NOT_FOUND" || err.code === "SANDBOX_NOT_RUNNING");
}

/**
 * `{ kiln }`: one sandbox per thread id, opened on first use. After `idleTimeoutMs` without a
 * call a sandbox is released (a thread's per `release`, the tool set's own one stopped), and
 * close() releases them all (the tool set's own one deleted).
 */
export class ThreadSandboxes implements SandboxSource {
  readonly #kiln: Kiln;
  readonly #options: ThreadSandboxesOptions;
  readonly #entries = new Map<string, Entry>();
  /** Releases in flight, by name: opening that name again waits for them. */
  readonly #releasing = new Map<string, Promise<void>>();
  /** The sandbox of calls made outside any thread: one per tool set, never shared. */
  readonly #toolSetName: string;
  #toolSetOpened = false;

  constructor(kiln: Kiln, options: ThreadSandboxesOptions) {
    this.#kiln = kiln;
    this.#options = options;
    this.#toolSetName = sandboxNameForToolSet(options.namePrefix);
  }

  async use<T>(threadId: string | undefined, work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    const name = threadId === undefined ? this.#toolSetName : sandboxNameForThread(threadId, this.#options.namePrefix);
    for (let attempt = 1; ; attempt++) {
      const entry = this.#acquire(name, threadId);
      try {
        return await work(await entry.sandbox);
      } catch (err) {
        if (attempt > 1 || !isGone(err)) throw err;
        // Deleted or stopped behind our back: forget the handle and open it again, once.
        this.#forget(entry);
      } finally {
        this.#done(entry);
      }
    }
  }

  async close(): Promise<void> {
    const held = [...this.#entries.values()];
    // The tool set's sandbox may be stopped for idleness, so not held: it is deleted all the same.
    const toolSetStopped = this.#toolSetOpened && !this.#entries.has(this.#toolSetName);
    this.#toolSetOpened = false;
    await Promise.all([
      ...held.map((e) => this.#release(e, e.ephemeral ? "delete" : this.#options.release)),
      ...(toolSetStopped ? [this.#releaseNamed(this.#toolSetName, this.#find(this.#toolSetName), "delete")] : []),
      ...this.#releasing.values(),
    ]);
  }

  /** The names of the sandboxes currently held (for tests and diagnostics). */
  get openNames(): string[] {
    return [...this.#entries.keys()];
  }

  #acquire(name: string, threadId: string | undefined): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      const created: Entry = {
        name,
        ephemeral: threadId === undefined,
        sandbox: this.#open(name, threadId),
        active: 0,
      };
      // A failed open (engine down, bad options) must not stick: the next call tries again.
      created.sandbox.catch(() => this.#forget(created));
      this.#entries.set(name, created);
      if (created.ephemeral) this.#toolSetOpened = true;
      entry = created;
    }
    entry.active++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    return entry;
  }

  async #open(name: string, threadId: string | undefined): Promise<Sandbox> {
    await this.#releasing.get(name);
    const { sandboxOptions } = this.#options;
    const labels = {
      ...sandboxOptions.labels,
      ...ADAPTER_LABEL,
      ...(threadId === undefined ? {} : { [THREAD_LABEL]: threadId.slice(0, MAX_LABEL_VALUE) }),
    };
    return this.#kiln.getOrCreate(name, { ...sandboxOptions, labels });
  }

  #done(entry: Entry): void {
    entry.active--;
    const idle = this.#options.idleTimeoutMs;
    if (entry.active > 0 || this.#entries.get(entry.name) !== entry || !(idle > 0 && idle < Infinity)) return;
    entry.timer = setTimeout(() => {
      if (entry.active > 0) return;
      // The tool set's own sandbox is only stopped: its calls may come back, and close() deletes it.
      void this.#release(entry, entry.ephemeral ? "stop" : this.#options.release).catch(() => {});
    }, idle);
    // An idle timer must not keep the process alive on its own.
    entry.timer.unref();
  }

  async #find(name: string): Promise<Sandbox | undefined> {
    try {
      return await this.#kiln.get(name);
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }

  #forget(entry: Entry): void {
    clearTimeout(entry.timer);
    if (this.#entries.get(entry.name) === entry) this.#entries.delete(entry.name);
  }

  #release(entry: Entry, mode: ReleaseMode): Promise<void> {
    this.#forget(entry);
    return this.#releaseNamed(entry.name, entry.sandbox, mode);
  }

  /** Stops or deletes a sandbox. Releases of one name run in order, and #open waits for them. */
  #releaseNamed(name: string, sandbox: Promise<Sandbox | undefined>, mode: ReleaseMode): Promise<void> {
    const previous = this.#releasing.get(name) ?? Promise.resolve();
    const pending = previous.then(async () => {
      const opened = await sandbox.catch(() => undefined);
      if (!opened) return;
      try {
        await (mode === "delete" ? opened.delete() : opened.stop());
      } catch (err) {
        if (!isGone(err)) throw err;
      }
    });
    const settled = pending.catch(() => {});
    this.#releasing.set(name, settled);
    void settled.then(() => {
      if (this.#releasing.get(name) === settled) this.#releasing.delete(name);
    });
    return pending;
  }
}
