/**
 * One open connection to a sandbox's agent: a long-lived engine exec whose stdin/stdout carry
 * frames. Requests are multiplexed by id, so any number may be in flight at once; the per-call
 * cost is a message round trip, not a process start.
 */
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

export class AgentConnection {
  readonly #channel: ProcessChannel;
  readonly #decoder = new FrameDecoder();
  readonly #handlers = new Map<number, { onFrame: FrameHandler; fail: (err: Error) => void }>();
  #nextId = 1;
  #closedError: Error | undefined;
  #drained: Promise<void> | undefined;
  readonly #closeListeners: (() => void)[] = [];

  constructor(channel: ProcessChannel) {
    this.#channel = channel;
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
      this.#handlers.set(id, {
        onFrame: (frame) => {
          let done: boolean;
          try {
            done = onFrame(frame);
          } catch (err) {
            this.#handlers.delete(id);
            reject(err);
            return true;
          }
          if (done) {
            this.#handlers.delete(id);
            resolve();
          }
          return done;
        },
        fail: reject,
      });
    });
    // A send that fails means the connection closed, which already failed `finished`.
    this.#write(frame).catch(() => {});
    return { id, finished };
  }

  /** Writes one frame; resolves once the stream can take more (backpressure for large uploads). */
  async send(header: FrameHeader, body?: Uint8Array): Promise<void> {
    if (this.#closedError) throw this.#closedError;
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
  async call(header: Omit<FrameHeader, "id">, body?: Uint8Array): Promise<Frame> {
    let reply: Frame | undefined;
    await this.request(
      header,
      (frame) => {
        reply = frame;
        return true;
      },
      body,
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
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}
