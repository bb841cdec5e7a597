/**
 * Which sandbox a tool set uses: one it was given, or one it makes on the first tool call,
 * either its own or the named sandbox of a conversation key (reachable from any process).
 */
import { createHash } from "node:crypto";
import { type CreateSandboxOptions, type Kiln, KilnError, type Sandbox } from "@kiln/core";
import { DEFAULT_AUTO_STOP_MS, DEFAULT_EPHEMERAL_AUTO_DELETE_MS, KEY_PREFIX, MAX_SANDBOX_NAME } from "./defaults.ts";

/** Use this sandbox. The tool set never stops or deletes it: its owner does. */
export interface GivenSandbox {
  sandbox: Sandbox;
}

/** Make a sandbox on the first tool call. */
export interface LazySandbox {
  kiln: Kiln;
  /**
   * Options of the sandbox made on first use (its name comes from `key`).
   * @default { autoStopMs: idleTimeoutMs, labels: { adapter: "vercel-ai" } }, plus autoDeleteMs: 1 h without `key`
   */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Stop the sandbox after this long without a tool call. Its files stay; the next tool call
   * starts it again, with fresh interpreters. 0 keeps it running. The same value goes to core
   * as `autoStopMs`, which holds even when this process dies.
   * @default 900_000 (15 min)
   */
  idleTimeoutMs?: number;
  /**
   * A conversation id. With it the sandbox is `kiln.getOrCreate("ai-" + key)`, so a conversation
   * continues in the same sandbox from any process; without it the tool set has a sandbox of its own.
   * @default none
   */
  key?: string;
}

export type SandboxSource = GivenSandbox | LazySandbox;

export interface ReleaseOptions {
  /** Delete a keyed sandbox instead of stopping it (the conversation is over). @default false */
  delete?: boolean;
}

const NAME_UNSAFE = /[^A-Za-z0-9_.-]/;
const NAME_UNSAFE_RUNS = /[^A-Za-z0-9_.-]+/g;

/**
 * `"ai-" + key` made into a valid sandbox name. Keys that had to change (characters outside
 * letters, digits, `_.-`, or too long) get a hash suffix, so two keys never share a sandbox.
 */
export function sandboxNameForKey(key: string): string {
  if (key === "") throw new TypeError("key must not be empty");
  const plain = `${KEY_PREFIX}${key}`;
  if (!NAME_UNSAFE.test(key) && plain.length <= MAX_SANDBOX_NAME) return plain;
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 10);
  const room = MAX_SANDBOX_NAME - KEY_PREFIX.length - hash.length - 1;
  const readable = key
    .replace(NAME_UNSAFE_RUNS, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, room);
  return `${KEY_PREFIX}${readable === "" ? "" : `${readable}-`}${hash}`;
}

const hasCode = (err: unknown, code: string) => KilnError.isInstance(err) && err.code === code;

/** What a tool learns about the sandbox it ran on. */
export interface UseInfo {
  /**
   * "started": the sandbox had been stopped (idle, or by hand) and was started for this call,
   * so interpreter state is gone; "recreated": it had been deleted and a new one was made, so
   * files are gone too.
   */
  restarted?: "started" | "recreated";
}

export class SandboxBinding {
  readonly #source: SandboxSource;
  readonly #idleTimeoutMs: number;
  #current?: Promise<Sandbox>;
  #released = false;
  #active = 0;
  #idleTimer?: NodeJS.Timeout;
  /** Set while (and after) the idle timer stops the sandbox; the next call starts it again. */
  #idleStop?: Promise<void>;

  constructor(source: SandboxSource) {
    if (!source || typeof source !== "object" || (!("sandbox" in source) && !("kiln" in source)))
      throw new TypeError("kilnTools: pass { sandbox } or { kiln, sandboxOptions?, key? }");
    if ("kiln" in source && source.key !== undefined) sandboxNameForKey(source.key);
    this.#source = source;
    this.#idleTimeoutMs = "kiln" in source ? (source.idleTimeoutMs ?? DEFAULT_AUTO_STOP_MS) : 0;
  }

  /** The sandbox's name when it comes from a key. */
  get name(): string | undefined {
    return "kiln" in this.#source && this.#source.key !== undefined ? sandboxNameForKey(this.#source.key) : undefined;
  }

  /** The sandbox, made or found on first use. */
  sandbox(): Promise<Sandbox> {
    if (this.#released) return Promise.reject(new Error("This Kiln tool set was disposed"));
    if (!this.#current) {
      const made = this.#acquire();
      // A failed attempt (engine down, bad options) is not cached: the next call tries again.
      made.catch(() => {
        if (this.#current === made) this.#current = undefined;
      });
      this.#current = made;
    }
    return this.#current;
  }

  /**
   * Runs `work` on the sandbox. A sandbox stopped meanwhile (idle, or by hand) is started
   * again; one deleted meanwhile is made again when this binding made it. Both are detected
   * before the work ran, so running it once more is safe.
   */
  async use<T>(work: (sandbox: Sandbox, info: UseInfo) => Promise<T>): Promise<T> {
    this.#active += 1;
    clearTimeout(this.#idleTimer);
    try {
      const sandbox = await this.sandbox();
      let restarted: UseInfo["restarted"];
      if (this.#idleStop) {
        const stopping = this.#idleStop;
        await stopping.catch(() => {});
        if (this.#idleStop === stopping) this.#idleStop = undefined;
        await sandbox.start();
        restarted = "started";
      }
      try {
        return await work(sandbox, restarted ? { restarted } : {});
      } catch (err) {
        if (hasCode(err, "SANDBOX_NOT_RUNNING")) {
          await sandbox.start();
          return await work(sandbox, { restarted: "started" });
        }
        if (hasCode(err, "SANDBOX_NOT_FOUND") && "kiln" in this.#source && !this.#released) {
          this.#current = undefined;
          return await work(await this.sandbox(), { restarted: "recreated" });
        }
        throw err;
      }
    } finally {
      this.#active -= 1;
      this.#armIdleTimer();
    }
  }

  /**
   * Releases what this binding made: its own sandbox is deleted (nothing else can reach it);
   * a keyed sandbox is stopped, keeping its files for the conversation's next turn, or deleted
   * with `{ delete: true }`. A given sandbox is left alone. Idempotent.
   */
  async release(options: ReleaseOptions = {}): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#idleTimer);
    const current = this.#current;
    this.#current = undefined;
    if (!current || "sandbox" in this.#source) return;
    const sandbox = await current.catch(() => undefined);
    if (!sandbox) return;
    await this.#idleStop?.catch(() => {});
    try {
      if (this.#source.key === undefined || options.delete) await sandbox.delete();
      else await sandbox.stop();
    } catch (err) {
      if (!hasCode(err, "SANDBOX_NOT_FOUND")) throw err;
    }
  }

  #armIdleTimer(): void {
    if (this.#idleTimeoutMs <= 0 || this.#active > 0 || this.#released || !this.#current) return;
    const current = this.#current;
    this.#idleTimer = setTimeout(() => {
      if (this.#active > 0 || this.#released || this.#current !== current) return;
      const stopping = current.then((sandbox) => sandbox.stop());
      stopping.catch(() => {}); // a failed stop shows up when the next call starts the sandbox
      this.#idleStop = stopping;
    }, this.#idleTimeoutMs);
    // An idle timer must not keep the process alive.
    this.#idleTimer.unref();
  }

  async #acquire(): Promise<Sandbox> {
    const source = this.#source;
    if ("sandbox" in source) return source.sandbox;
    const keyed = source.key !== undefined;
    const options: Omit<CreateSandboxOptions, "name"> = {
      ...(this.#idleTimeoutMs > 0 ? { autoStopMs: Math.max(1000, this.#idleTimeoutMs) } : {}),
      ...(keyed ? {} : { autoDeleteMs: DEFAULT_EPHEMERAL_AUTO_DELETE_MS }),
      ...source.sandboxOptions,
      labels: { adapter: "vercel-ai", ...source.sandboxOptions?.labels },
    };
    const name = this.name;
    return name === undefined ? source.kiln.create(options) : source.kiln.getOrCreate(name, options);
  }
}
