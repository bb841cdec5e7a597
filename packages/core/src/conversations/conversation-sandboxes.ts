/**
 * One sandbox per conversation, for agent frameworks: opened lazily with `kiln.getOrCreate`
 * under a name derived from the conversation id (so a conversation continues in the same
 * sandbox from any process, after any restart), released when idle and on close, and reopened
 * transparently when it was stopped or deleted behind our back. Adapters bind their tools to
 * this instead of managing sandbox lifecycles themselves.
 */

import { KilnError } from "../errors.ts";
import type { Kiln } from "../kiln.ts";
import type { Sandbox } from "../sandbox/sandbox.ts";
import type { CreateSandboxOptions } from "../types.ts";
import { checkKnownKeys, optionalNumber, optionalObject, optionalOneOf } from "../validate.ts";
import { checkNamePrefix, privateSandboxName, sandboxNameFor } from "./sandbox-names.ts";

/** 15 minutes: long enough for a person to read an answer and reply, short enough to free idle sandboxes. */
export const DEFAULT_IDLE_TIMEOUT_MS = 15 * 60 * 1000;
/** A private sandbox is unreachable once its process is gone: the engine deletes it an hour after it stops. */
const PRIVATE_AUTO_DELETE_MS = 60 * 60 * 1000;
/** The agent's auto-stop clock works in whole seconds at best. */
const MIN_AUTO_STOP_MS = 1000;

export type ReleaseMode = "stop" | "delete";

export interface ConversationSandboxesOptions {
  kiln: Kiln;
  /** Sandbox names are `<namePrefix><conversation id>`, e.g. "lc-". */
  namePrefix: string;
  /** Options of every sandbox made here (`name` comes from the conversation). @default {} */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Release a sandbox after this long without a call; 0 or Infinity: only on close(). Also the
   * sandboxes' `autoStopMs` (unless sandboxOptions sets one), which holds when this process dies.
   * @default 900_000 (15 min)
   */
  idleTimeoutMs?: number;
  /**
   * What releasing a conversation's sandbox does: "stop" keeps its files for the next turn (from
   * any process); "delete" frees everything. The private sandbox (calls without a conversation
   * id) is stopped when idle and always deleted on close, since nothing could find it again.
   * @default "stop"
   */
  release?: ReleaseMode;
}

/** What a call learns about the sandbox it ran in. */
export interface UseInfo {
  /**
   * "started": it had been stopped and was started for this call, so interpreter state is gone;
   * "recreated": it had been deleted and a new one was made, so files are gone too.
   */
  restarted?: "started" | "recreated";
}

/**
 * What to tell a model, before a call's output, when its sandbox had to be started or made
 * again: which of its earlier work is gone. The same words in every framework.
 */
export const RESTARTED_NOTES: Record<NonNullable<UseInfo["restarted"]>, string> = {
  started:
    "[The sandbox had been stopped (idle) and was started again for this call: files are kept, but variables, " +
    "imports and functions from earlier run_code calls are gone. Re-run what you need.]",
  recreated:
    "[The sandbox had been deleted and a new, empty one was made for this call: files and variables from " +
    "earlier calls are gone.]",
};

interface Entry {
  readonly name: string;
  readonly private: boolean;
  readonly sandbox: Promise<Sandbox>;
  /** Set when opening found the sandbox stopped or gone (the first call then says so). */
  restarted?: UseInfo["restarted"];
  /** Calls running in it now; never released for idleness while above 0. */
  active: number;
  timer?: NodeJS.Timeout;
}

/** The sandbox went away under us (deleted, or stopped by someone else): opening it again is safe. */
function gone(err: unknown): "SANDBOX_NOT_FOUND" | "SANDBOX_NOT_RUNNING" | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  return err.code === "SANDBOX_NOT_FOUND" || err.code === "SANDBOX_NOT_RUNNING" ? err.code : undefined;
}

export class ConversationSandboxes implements AsyncDisposable {
  readonly #kiln: Kiln;
  readonly #prefix: string;
  readonly #sandboxOptions: Omit<CreateSandboxOptions, "name" | "signal">;
  readonly #idleTimeoutMs: number;
  readonly #release: ReleaseMode;
  readonly #entries = new Map<string, Entry>();
  /** Releases in flight, by name: opening that name again waits for them. */
  readonly #releasing = new Map<string, Promise<void>>();
  /** Names this instance opened before: reopening one that is not running means "started". */
  readonly #seen = new Set<string>();
  readonly #privateName: string;
  #closed = false;

  constructor(options: ConversationSandboxesOptions) {
    checkKnownKeys("options", optionalObject("options", options), [
      "kiln",
      "namePrefix",
      "sandboxOptions",
      "idleTimeoutMs",
      "release",
    ]);
    this.#kiln = options.kiln;
    this.#prefix = checkNamePrefix(options.namePrefix);
    this.#sandboxOptions = options.sandboxOptions ?? {};
    this.#idleTimeoutMs =
      optionalNumber("idleTimeoutMs", options.idleTimeoutMs === Infinity ? 0 : options.idleTimeoutMs, {
        min: 0,
        max: 365 * 24 * 60 * 60 * 1000,
      }) ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#release = optionalOneOf("release", options.release, ["stop", "delete"] as const) ?? "stop";
    this.#privateName = privateSandboxName(this.#prefix);
  }

  /** The sandbox name a conversation id maps to (undefined: this instance's private sandbox). */
  nameFor(conversationId: string | undefined): string {
    return conversationId === undefined ? this.#privateName : sandboxNameFor(this.#prefix, conversationId);
  }

  /** Names of the sandboxes held open right now. */
  get openNames(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Runs `work` in the conversation's sandbox (`conversationId` undefined: this instance's own).
   * A sandbox stopped or deleted behind our back is started or made again and `work` runs once
   * more: both are detected when connecting, before anything ran.
   */
  async use<T>(conversationId: string | undefined, work: (sandbox: Sandbox, info: UseInfo) => Promise<T>): Promise<T> {
    if (this.#closed) throw new KilnError("CONFLICT", "These conversation sandboxes were closed");
    const name = this.nameFor(conversationId);
    for (let attempt = 1; ; attempt++) {
      const entry = this.#acquire(name, conversationId === undefined);
      try {
        const sandbox = await entry.sandbox;
        const restarted = entry.restarted;
        entry.restarted = undefined;
        return await work(sandbox, restarted ? { restarted } : {});
      } catch (err) {
        if (attempt > 1 || !gone(err)) throw err;
        this.#forget(entry);
      } finally {
        this.#done(entry);
      }
    }
  }

  /** Releases every sandbox opened here (the private one deleted). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const held = [...this.#entries.values()];
    // The private sandbox may have been stopped for idleness and so not be held: delete it anyway.
    const privateIdle = this.#seen.has(this.#privateName) && !this.#entries.has(this.#privateName);
    this.#seen.clear();
    await Promise.all([
      ...held.map((e) => this.#releaseEntry(e, e.private ? "delete" : this.#release)),
      ...(privateIdle ? [this.#releaseNamed(this.#privateName, this.#find(this.#privateName), "delete")] : []),
      ...this.#releasing.values(),
    ]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #acquire(name: string, isPrivate: boolean): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      const created: Entry = {
        name,
        private: isPrivate,
        sandbox: this.#open(name, isPrivate, () => created),
        active: 0,
      };
      // A failed open (engine down, bad options) must not stick: the next call tries again.
      created.sandbox.catch(() => this.#forget(created));
      this.#entries.set(name, created);
      entry = created;
    }
    entry.active++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    return entry;
  }

  async #open(name: string, isPrivate: boolean, entry: () => Entry): Promise<Sandbox> {
    await this.#releasing.get(name);
    const existing = this.#seen.has(name) ? await this.#find(name) : undefined;
    const state = existing ? (await existing.info()).state : undefined;
    const autoStop =
      this.#idleTimeoutMs > 0 && this.#sandboxOptions.autoStopMs === undefined
        ? { autoStopMs: Math.max(MIN_AUTO_STOP_MS, this.#idleTimeoutMs) }
        : {};
    const privateDelete =
      isPrivate && this.#sandboxOptions.autoDeleteMs === undefined ? { autoDeleteMs: PRIVATE_AUTO_DELETE_MS } : {};
    const sandbox = await this.#kiln.getOrCreate(name, { ...autoStop, ...privateDelete, ...this.#sandboxOptions });
    if (this.#seen.has(name)) {
      if (!existing) entry().restarted = "recreated";
      else if (state !== "running") entry().restarted = "started";
    }
    this.#seen.add(name);
    return sandbox;
  }

  #done(entry: Entry): void {
    entry.active--;
    if (entry.active > 0 || this.#entries.get(entry.name) !== entry || this.#idleTimeoutMs <= 0) return;
    entry.timer = setTimeout(() => {
      if (entry.active > 0) return;
      // The private sandbox is only stopped when idle: its calls may come back, and close() deletes it.
      void this.#releaseEntry(entry, entry.private ? "stop" : this.#release).catch(() => {});
    }, this.#idleTimeoutMs);
    // An idle timer must not keep the process alive on its own.
    entry.timer.unref();
  }

  async #find(name: string): Promise<Sandbox | undefined> {
    try {
      return await this.#kiln.get(name);
    } catch (err) {
      if (gone(err)) return undefined;
      throw err;
    }
  }

  #forget(entry: Entry): void {
    clearTimeout(entry.timer);
    if (this.#entries.get(entry.name) === entry) this.#entries.delete(entry.name);
  }

  #releaseEntry(entry: Entry, mode: ReleaseMode): Promise<void> {
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
        if (!gone(err)) throw err;
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
