/**
 * Framing of the host <-> agent wire protocol (runtime/PROTOCOL.md):
 * u32 BE header length | u32 BE body length | JSON header | raw body.
 */

export interface FrameHeader {
  type: string;
  id: number;
  [field: string]: unknown;
}

export interface Frame {
  header: FrameHeader;
  body: Buffer;
}

export const MAX_HEADER_BYTES = 1024 * 1024;
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export function encodeFrame(header: FrameHeader, body?: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32BE(json.length, 0);
  prefix.writeUInt32BE(body?.length ?? 0, 4);
  return body?.length ? Buffer.concat([prefix, json, body]) : Buffer.concat([prefix, json]);
}

/** Incremental decoder: feed it bytes as they arrive, get whole frames back. */
export class FrameDecoder {
  #buffered: Buffer[] = [];
  #length = 0;

  /** Returns the frames completed by `chunk`. Throws on a frame over the protocol's limits. */
  push(chunk: Buffer): Frame[] {
    this.#buffered.push(chunk);
    this.#length += chunk.length;
    const frames: Frame[] = [];
    while (this.#length >= 8) {
      const head = this.#peek(8);
      const headerLength = head.readUInt32BE(0);
      const bodyLength = head.readUInt32BE(4);
      if (headerLength > MAX_HEADER_BYTES || bodyLength > MAX_BODY_BYTES) {
        throw new Error(`agent frame over the limits (header ${headerLength}, body ${bodyLength})`);
      }
      const total = 8 + headerLength + bodyLength;
      if (this.#length < total) break;
      const whole = this.#take(total);
      const header = JSON.parse(whole.subarray(8, 8 + headerLength).toString("utf8")) as FrameHeader;
      frames.push({ header, body: whole.subarray(8 + headerLength) });
    }
    return frames;
  }

  #peek(n: number): Buffer {
    if (this.#buffered[0] && this.#buffered[0].length >= n) return this.#buffered[0];
    const joined = Buffer.concat(this.#buffered);
    this.#buffered = [joined];
    return joined;
  }

  #take(n: number): Buffer {
    const joined = this.#peek(n);
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.#buffered = rest.length ? [rest] : [];
    this.#length -= n;
    return taken;
  }
}
