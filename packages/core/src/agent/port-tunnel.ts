/**
 * A TCP connection to a port inside a sandbox, carried over the agent connection (`port_open`,
 * runtime/PROTOCOL.md), as a Node Duplex: the sandbox needs no network and no published port.
 * Backpressure both ways: writes wait for the agent connection to drain; when this stream's
 * reader falls behind, the agent is asked to stop reading the socket (`port_pause`) until it
 * catches up (`port_resume`).
 */
import { Duplex } from "node:stream";
import type { AgentConnection } from "./connection.ts";

const CHUNK_BYTES = 256 * 1024;

export class PortTunnelError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class PortTunnel extends Duplex {
  readonly #connection: AgentConnection;
  #id = 0;
  #paused = false;
  #closed = false;
  #eof = false;

  private constructor(connection: AgentConnection) {
    super({ allowHalfOpen: true });
    this.#connection = connection;
  }

  /** Connects to 127.0.0.1:port inside the sandbox; rejects with PortTunnelError (ECONNREFUSED...) */
  static open(connection: AgentConnection, port: number): Promise<PortTunnel> {
    const tunnel = new PortTunnel(connection);
    return new Promise<PortTunnel>((resolve, reject) => {
      let opened = false;
      const request = connection.request(
        { type: "port_open", port },
        (frame) => {
          const h = frame.header;
          switch (h.type) {
            case "ok":
              opened = true;
              resolve(tunnel);
              return false;
            case "data":
              if (!tunnel.push(frame.body)) tunnel.#pause();
              return false;
            case "end":
              tunnel.#endReadable();
              return false;
            case "error":
              tunnel.#closed = true;
              reject(new PortTunnelError(String(h.code), `port ${port}: ${String(h.message)}`));
              return true;
            case "closed":
              tunnel.#closed = true;
              if (h.error !== undefined)
                tunnel.destroy(new PortTunnelError(String(h.error), `port ${port}: ${String(h.error)}`));
              else {
                tunnel.#endReadable();
                tunnel.end();
              }
              return true;
            default:
              return false;
          }
        },
        undefined,
        // An open connection may carry nothing for any time (an idle keep-alive): no idle deadline,
        // or 15 s of quiet (AGENT_CALL_TIMEOUT_MS) would close the whole agent connection.
        { deadlineMs: 0 },
      );
      tunnel.#id = request.id;
      request.finished.catch((err: Error) => {
        tunnel.#closed = true;
        if (opened) tunnel.destroy(err);
        else reject(err);
      });
    });
  }

  #endReadable(): void {
    if (this.#eof) return;
    this.#eof = true;
    this.push(null);
  }

  #pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#connection.send({ type: "port_pause", id: 0, target: this.#id }).catch(() => {});
  }

  override _read(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.#connection.send({ type: "port_resume", id: 0, target: this.#id }).catch(() => {});
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#closed) {
      callback();
      return;
    }
    (async () => {
      for (let at = 0; at < chunk.length; at += CHUNK_BYTES) {
        await this.#connection.send(
          { type: "port_data", id: 0, target: this.#id },
          chunk.subarray(at, at + CHUNK_BYTES),
        );
      }
    })().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#closed) callback();
    else this.#connection.send({ type: "port_end", id: 0, target: this.#id }).then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#connection.send({ type: "cancel", id: 0, target: this.#id }).catch(() => {});
    }
    callback(error);
  }

  // What node:http asks of a socket it did not make itself.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
