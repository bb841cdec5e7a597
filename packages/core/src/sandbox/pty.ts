/**
 * sandbox.pty: terminals in a sandbox. A session lives in the sandbox's agent, not in this
 * process: it outlives the client that opened it, any number of handles may watch it, and
 * connect(id) re-attaches with the scrollback (the agent keeps the last 1 MiB) replayed first.
 */
import type { AgentConnection } from "../agent/connection.ts";
import type { Frame } from "../agent/frames.ts";
import { AgentUnavailableError, InvalidArgumentError, NotFoundError, QuotaExceededError } from "../errors.ts";
import type { Pty, PtyCreateOptions } from "../types.ts";
import { describe, optionalEnv, optionalObject, requireString } from "../validate.ts";
import { resolveSandboxPath } from "./paths.ts";

/** Input is sent to the agent in pieces no larger than this. */
const INPUT_CHUNK_BYTES = 256 * 1024;
/** Bytes kept for a handle while nobody has called onData yet (the agent's scrollback is as large). */
const UNCLAIMED_MAX_BYTES = 1024 * 1024;
const MAX_DIMENSION = 10_000;

export interface SandboxPty {
  /** Starts a program (a login shell unless `command`) on a new terminal and attaches to it. */
  create(options: PtyCreateOptions): Promise<Pty>;
  /** Re-attaches to a session by id: its scrollback first, then live output. */
  connect(id: string): Promise<Pty>;
}

type Connect = () => Promise<AgentConnection>;

export class AgentPtys implements SandboxPty {
  readonly #connect: Connect;

  constructor(connect: Connect) {
    this.#connect = connect;
  }

  async create(options: PtyCreateOptions): Promise<Pty> {
    const o = optionalObject("options", options);
    const cols = dimension("options.cols", o.cols);
    const rows = dimension("options.rows", o.rows);
    const header: Record<string, unknown> = { type: "pty_create", cols, rows };
    if (o.command !== undefined) header.argv = commandArgv("options.command", o.command);
    if (o.cwd !== undefined) header.cwd = resolveSandboxPath("options.cwd", o.cwd);
    const env = optionalEnv("options.env", o.env);
    if (env !== undefined) header.env = env;
    const connection = await this.#connect();
    const reply = await connection.call(header as { type: string });
    if (reply.header.type !== "ok") throw agentError(reply, "options");
    return this.#attach(String(reply.header.ptyId));
  }

  connect(id: string): Promise<Pty> {
    return this.#attach(requireString("id", id));
  }

  async #attach(id: string): Promise<Pty> {
    const pty = new AgentPty(this.#connect, id);
    await pty.attach();
    return pty;
  }
}

/** One handle on a session. Closing it detaches; the session goes on. */
export class AgentPty implements Pty {
  readonly id: string;
  readonly #connect: Connect;
  readonly #listeners = new Set<(bytes: Uint8Array) => void>();
  /** Output that arrived before anyone listened (bounded). */
  #unclaimed: Buffer[] = [];
  #unclaimedBytes = 0;
  /** The offset in the session's output just after the last byte this handle received. */
  #offset = 0;
  #connection: AgentConnection | undefined;
  #attachId: number | undefined;
  #paused = false;
  #closed = false;
  #exit: Promise<{ exitCode: number }> | undefined;
  #exitCode: number | undefined;
  #exitWaiters: { resolve: (r: { exitCode: number }) => void; reject: (err: Error) => void }[] = [];
  #waitingByRequest = false;

  constructor(connect: Connect, id: string) {
    this.#connect = connect;
    this.id = id;
  }

  /** @internal Subscribes from this handle's offset; resolves once the agent accepted. */
  async attach(): Promise<void> {
    const connection = await this.#connect();
    this.#connection = connection;
    let accepted!: () => void;
    let refused!: (err: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      accepted = resolve;
      refused = reject;
    });
    let current = () => true;
    const request = connection.request(
      { type: "pty_attach", ptyId: this.id, offset: this.#offset },
      (frame) => {
        const h = frame.header;
        if (h.type === "detached") return true;
        // After pause() + resume(), frames still in flight for the old subscription are dropped:
        // the new one starts from the offset this handle had reached, so it sends them again.
        if (!current()) return h.type === "exit";
        if (h.type === "attached") {
          accepted();
          return false;
        }
        if (h.type === "data") {
          this.#offset = Number(h.offset) + frame.body.length;
          this.#deliver(frame.body);
          return false;
        }
        if (h.type === "error") {
          refused(agentError(frame, "id"));
          return true;
        }
        if (h.type === "exit") {
          this.#settleExit(Number(h.exitCode));
          return true;
        }
        return false;
      },
      undefined,
      // Attached, it waits on the terminal's program, which may print nothing for any time: no
      // idle deadline (AGENT_CALL_TIMEOUT_MS would close the agent connection after 15 s of quiet).
      { deadlineMs: 0 },
    );
    this.#attachId = request.id;
    current = () => this.#attachId === request.id;
    request.finished.catch((err: Error) => {
      refused(err);
      if (current()) this.#failExit(err);
    });
    await ready;
  }

  onData(callback: (bytes: Uint8Array) => void): () => void {
    if (typeof callback !== "function")
      throw new InvalidArgumentError("callback", `must be a function, got ${describe(callback)}`);
    this.#listeners.add(callback);
    if (this.#unclaimed.length > 0) {
      const pending = Buffer.concat(this.#unclaimed);
      this.#unclaimed = [];
      this.#unclaimedBytes = 0;
      safeCall(callback, pending);
    }
    return () => this.#listeners.delete(callback);
  }

  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (!(bytes instanceof Uint8Array))
      throw new InvalidArgumentError("data", `must be a string or a Uint8Array, got ${describe(data)}`);
    const connection = this.#live();
    // Frames leave in call order, so a write after a resize() reaches the terminal after it.
    for (let at = 0; at < bytes.length; at += INPUT_CHUNK_BYTES) {
      connection
        .send({ type: "pty_input", id: 0, target: this.id }, bytes.subarray(at, at + INPUT_CHUNK_BYTES))
        .catch(() => {});
    }
  }

  async resize(cols: number, rows: number): Promise<void> {
    const reply = await this.#live().call({
      type: "pty_resize",
      ptyId: this.id,
      cols: dimension("cols", cols),
      rows: dimension("rows", rows),
    });
    if (reply.header.type !== "ok") throw agentError(reply, "id");
  }

  /** Ends the session's program (SIGKILL to it and to the terminal's foreground job). */
  async kill(): Promise<void> {
    const connection = this.#connection ?? (await this.#connect());
    const reply = await connection.call({ type: "pty_kill", ptyId: this.id });
    if (reply.header.type !== "ok") throw agentError(reply, "id");
  }

  /**
   * Resolves with the program's exit code once it has ended (128 + signal if killed). While this
   * handle is attached, that is after the last output has reached its onData listeners.
   */
  wait(): Promise<{ exitCode: number }> {
    if (this.#exitCode !== undefined) return Promise.resolve({ exitCode: this.#exitCode });
    this.#exit ??= new Promise<{ exitCode: number }>((resolve, reject) => {
      this.#exitWaiters.push({ resolve, reject });
    });
    if (this.#attachId === undefined) this.#waitByRequest();
    return this.#exit;
  }

  #waitByRequest(): void {
    if (this.#waitingByRequest || this.#exitWaiters.length === 0) return;
    this.#waitingByRequest = true;
    (async () => {
      const connection = this.#connection ?? (await this.#connect());
      // Answered when the program ends, which may be never: no deadline (the default one would
      // close the sandbox's connection after 15 s, ending every other call on it, e.g. a running cell).
      const reply = await connection.call({ type: "pty_wait", ptyId: this.id }, undefined, { deadlineMs: 0 });
      if (reply.header.type !== "exit") throw agentError(reply, "id");
      this.#settleExit(Number(reply.header.exitCode));
    })().catch((err: Error) => this.#failExit(err));
  }

  #settleExit(exitCode: number): void {
    this.#exitCode ??= exitCode;
    for (const waiter of this.#exitWaiters.splice(0)) waiter.resolve({ exitCode: this.#exitCode });
  }

  #failExit(err: Error): void {
    if (this.#exitCode !== undefined) return;
    this.#waitingByRequest = false;
    const waiters = this.#exitWaiters.splice(0);
    this.#exit = undefined;
    for (const waiter of waiters) waiter.reject(err);
  }

  /**
   * Stops receiving output for now (a consumer that cannot keep up); the session runs on.
   * resume() continues from where this handle stopped, with what the agent still keeps of
   * what it missed (the last 1 MiB).
   */
  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#detach(); // wait() meanwhile resolves once resume() has delivered the rest
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.attach().catch(() => {});
  }

  /** Detaches this handle; the session goes on (connect(id) again to re-attach). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
    this.#waitByRequest();
    this.#listeners.clear();
  }

  #detach(): void {
    const id = this.#attachId;
    this.#attachId = undefined;
    if (id !== undefined) this.#connection?.send({ type: "cancel", id: 0, target: id }).catch(() => {});
  }

  #live(): AgentConnection {
    if (this.#closed) throw new InvalidArgumentError("pty", "this handle was closed: connect(id) again");
    if (!this.#connection || this.#connection.closed)
      throw new AgentUnavailableError("the terminal's connection to the sandbox closed");
    return this.#connection;
  }

  #deliver(bytes: Buffer): void {
    if (this.#listeners.size === 0) {
      this.#unclaimed.push(bytes);
      this.#unclaimedBytes += bytes.length;
      while (this.#unclaimedBytes > UNCLAIMED_MAX_BYTES && this.#unclaimed.length > 1) {
        this.#unclaimedBytes -= (this.#unclaimed.shift() as Buffer).length;
      }
      return;
    }
    for (const listener of this.#listeners) safeCall(listener, bytes);
  }
}

function safeCall(callback: (bytes: Uint8Array) => void, bytes: Uint8Array): void {
  try {
    callback(bytes);
  } catch {
    // A listener that throws must not break the protocol handling.
  }
}

function dimension(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_DIMENSION) {
    throw new InvalidArgumentError(field, `must be a whole number from 1 to ${MAX_DIMENSION}, got ${describe(value)}`);
  }
  return value;
}

/** A string runs through `sh -c`, an array is exec'd as argv (as in exec). */
export function commandArgv(field: string, command: unknown): string[] {
  if (typeof command === "string") {
    if (command.trim() === "") throw new InvalidArgumentError(field, "must not be empty");
    if (command.includes("\0")) throw new InvalidArgumentError(field, "must not contain NUL bytes");
    return ["/bin/sh", "-c", command];
  }
  if (Array.isArray(command) && command.length > 0) {
    command.forEach((arg, i) => {
      if (typeof arg !== "string" || arg.includes("\0"))
        throw new InvalidArgumentError(`${field}[${i}]`, `must be a string without NUL bytes, got ${describe(arg)}`);
    });
    return command as string[];
  }
  throw new InvalidArgumentError(field, `must be a string or a non-empty array of strings, got ${describe(command)}`);
}

/** An agent `error` frame as a KilnError: ENOENT/ESRCH are a missing session or process. */
export function agentError(frame: Frame, field: string): Error {
  const code = String(frame.header.code);
  const message = String(frame.header.message);
  if (code === "ENOENT" && /no such terminal/.test(message))
    return new NotFoundError(`No terminal "${frame.header.message ? message.split(": ").pop() : ""}" in this sandbox`);
  if (code === "ESRCH") return new NotFoundError(`No background process ${message.split(": ").pop()} in this sandbox`);
  if (code === "EPROTO") return new InvalidArgumentError(field, message);
  if (code === "EAGAIN") return new QuotaExceededError(`The sandbox refused: ${message}`);
  if (code === "ENOENT" || code === "EACCES" || code === "ENOTDIR")
    return new InvalidArgumentError(field, `the program could not start: ${message}`);
  return new AgentUnavailableError(`the sandbox's agent refused: ${code} ${message}`);
}
