/**
 * One open connection to a sandbox's agent: a long-lived engine exec whose stdin/stdout carry
 * frames. Requests are multiplexed by id, so any number may be in flight at once; the per-call
 * cost is a message round trip, not a process start.
 */

import { AGENT_CALL_TIMEOUT_MS } from "../defaults.ts";
import type { ProcessChannel } from "../engine/engine.ts";
import { AgentUnavailableError, InvalidArgumentError } from "../errors.ts";
import { encodeRequest, type Frame, FrameDecoder, type FrameHeader, RequestTooLargeError } from "./frames.ts";

export const AGENT_SOCKET = "/run/kiln/agent.sock";

/**
 * The bridge process: waits (inside the sandbox, no extra round trips) for the agent's socket
 * to appear, then relays stdio to it. The agent creates the socket only once it is listening.
 */
export function bridgeCommand(readyTimeoutMs: number): string[] {
  const tries = Math.ceil(readyTimeoutMs / 10);
  return [
    "/bin/sh",
    "-c",
    `i=0; while [ ! -S ${AGENT_SOCKET} ]; do i=$((i+1)); [ $i -gt ${tries} ] && { echo "agent socket never appeared" >&2; exit 3; }; sleep 0.01; done; exec socat STDIO UNIX-CONNECT:${AGENT_SOCKET}`,
  ];
}

/** Called with each frame of a request; return true when the request is finished. */
export type FrameHandler = (frame: Frame) => boolean;

export interface RequestOptions {
  /**
   * The longest the agent may stay silent on this request (no frame for it, nothing sent for
   * it) before the connection is judged dead: it is closed and every call on it fails with
   * AgentUnavailableError. Default AGENT_CALL_TIMEOUT_MS; 0 for requests with a deadline of
   * their own (exec, runCode).
   */
  deadlineMs?: number;
}

interface Pending {
  onFrame: FrameHandler;
  fail: (err: Error) => void;
  type: string;
  deadlineMs: number;
  timer?: NodeJS.Timeout;
}

export class AgentConnection {
  readonly #channel: ProcessChannel;
  readonly #decoder = new FrameDecoder();
  readonly #handlers = new Map<number, Pending>();
  #nextId = 1;
  #closedError: Error | undefined;
  #drained: Promise<void> | undefined;
  readonly #closeListeners: (() => void)[] = [];

  constructor(channel: ProcessChannel) {
    this.#channel = channel;
    // Idle until a call is in flight: an open connection alone never keeps the process alive.
    channel.unref?.();
    channel.stream.on("data", (chunk: Buffer) => this.#receive(chunk));
    channel.stream.on("end", () => this.#closeWith("the sandbox's agent connection ended"));
    channel.stream.on("close", () => this.#closeWith("the sandbox's agent connection closed"));
    channel.stream.on("error", (err: Error) =>
      this.#closeWith(`the sandbox's agent connection failed: ${err.message}`),
    );
  }

  get closed(): boolean {
    return this.#closedError !== undefined;
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.#closeListeners.push(listener);
  }

  /**
   * Sends a request and routes every frame with its id to `onFrame` until it returns true.
   * The promise settles when the request finishes, or rejects with AgentUnavailableError if the
   * connection closes first.
   */
  request(
    header: Omit<FrameHeader, "id">,
    onFrame: FrameHandler,
    body?: Uint8Array,
    options: RequestOptions = {},
  ): { id: number; finished: Promise<void> } {
    const id = this.#nextId++;
    let frame: Buffer;
    try {
      frame = encodeRequest({ ...header, id } as FrameHeader, body);
    } catch (err) {
      // Too big to send: this call fails alone; the connection and other calls are untouched.
      const error =
        err instanceof RequestTooLargeError ? new InvalidArgumentError(err.field, err.message, { cause: err }) : err;
      return { id, finished: Promise.reject(error) };
    }
    const finished = new Promise<void>((resolve, reject) => {
      if (this.#closedError) {
        reject(this.#closedError);
        return;
      }
      const pending: Pending = {
        type: String(header.type),
        deadlineMs: options.deadlineMs ?? AGENT_CALL_TIMEOUT_MS,
        onFrame: (frame) => {
          let done: boolean;
          try {
            done = onFrame(frame);
          } catch (err) {
            this.#settle(id);
            reject(err);
            return true;
          }
          if (done) {
            this.#settle(id);
            resolve();
          } else this.#arm(pending);
          return done;
        },
        fail: (err) => {
          clearTimeout(pending.timer);
          reject(err);
        },
      };
      if (this.#handlers.size === 0) this.#channel.ref?.();
      this.#handlers.set(id, pending);
      this.#arm(pending);
    });
    // A send that fails means the connection closed, which already failed `finished`.
    this.#write(frame).catch(() => {});
    return { id, finished };
  }

  /** (Re)starts a request's deadline: called when it starts, and on each frame to or from it. */
  #arm(pending: Pending): void {
    clearTimeout(pending.timer);
    if (!pending.deadlineMs || this.#closedError) return;
    pending.timer = setTimeout(() => {
      this.#closeWith(
        `the sandbox's agent did not answer a ${pending.type} request within ${pending.deadlineMs} ms (is it stopped, frozen or overloaded?)`,
      );
      this.#channel.close();
    }, pending.deadlineMs);
    // The in-flight call refs the channel; the timer alone must not keep the process alive.
    pending.timer.unref();
  }

  #settle(id: number): void {
    const pending = this.#handlers.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#handlers.delete(id);
    if (this.#handlers.size === 0 && !this.#closedError) this.#channel.unref?.();
  }

  /** Writes one frame; resolves once the stream can take more (backpressure for large uploads). */
  async send(header: FrameHeader, body?: Uint8Array): Promise<void> {
    if (this.#closedError) throw this.#closedError;
    const pending = header.id ? this.#handlers.get(header.id) : undefined;
    if (pending) this.#arm(pending); // a chunk of a write in progress is activity too
    let frame: Buffer;
    try {
      frame = encodeRequest(header, body);
    } catch (err) {
      if (err instanceof RequestTooLargeError) throw new InvalidArgumentError(err.field, err.message, { cause: err });
      throw err;
    }
    await this.#write(frame);
  }

  async #write(frame: Buffer): Promise<void> {
    if (this.#closedError) throw this.#closedError;
    if (!this.#channel.stream.write(frame)) await this.#writable();
  }

  /** One shared wait for "drain" (or close) however many senders are waiting: no listener piles up. */
  #writable(): Promise<void> {
    this.#drained ??= new Promise<void>((resolve) => {
      const stream = this.#channel.stream;
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        this.#drained = undefined;
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
    return this.#drained;
  }

  /** A one-shot request answered by a single `ok` or `error` frame. */
  async call(header: Omit<FrameHeader, "id">, body?: Uint8Array, options?: RequestOptions): Promise<Frame> {
    let reply: Frame | undefined;
    await this.request(
      header,
      (frame) => {
        reply = frame;
        return true;
      },
      body,
      options,
    ).finished;
    return reply as Frame;
  }

  close(): void {
    this.#closeWith("the connection was closed");
    this.#channel.close();
  }

  #receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#closeWith(`the sandbox's agent sent a malformed frame: ${(err as Error).message}`);
      this.#channel.close();
      return;
    }
    for (const frame of frames) this.#handlers.get(frame.header.id)?.onFrame(frame);
  }

  #closeWith(reason: string): void {
    if (this.#closedError) return;
    const stderr = this.#channel.stderr().trim();
    this.#closedError = new AgentUnavailableError(stderr ? `${reason} (${stderr})` : reason);
    for (const { fail } of this.#handlers.values()) fail(this.#closedError);
    this.#handlers.clear();
    this.#channel.unref?.();
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}
