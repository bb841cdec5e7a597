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

/** A request header bigger than this travels in the body instead (`fieldsInBody`). */
export const INLINE_HEADER_BYTES = 64 * 1024;
/** Most bytes of a request body the agent takes (host -> agent only; replies keep MAX_BODY_BYTES). */
export const MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024;

/** The API's name for a request field, for errors that name what the caller passed. */
const FIELD_NAMES: Record<string, string> = { code: "code", argv: "command", env: "options.env", cwd: "options.cwd" };

/** Thrown (synchronously) for a request that cannot be framed; the caller maps it to InvalidArgumentError. */
export class RequestTooLargeError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/**
 * A request as one frame. Headers are bounded (MAX_HEADER_BYTES) so a big code cell, argv or
 * env would not fit: a request without a body whose header is over INLINE_HEADER_BYTES
 * carries its fields as a JSON object in the body (`{type, id, fieldsInBody: true}`), up to
 * MAX_REQUEST_BODY_BYTES. Anything bigger throws RequestTooLargeError naming the largest field.
 */
export function encodeRequest(header: FrameHeader, body?: Uint8Array): Buffer {
  const json = JSON.stringify(header);
  if (json.length <= INLINE_HEADER_BYTES) return encodeFrame(header, body);
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= INLINE_HEADER_BYTES) return encodeFrame(header, body);
  const limit = body?.length ? MAX_HEADER_BYTES : MAX_REQUEST_BODY_BYTES;
  if (bytes > limit) {
    const [name] = Object.entries(header)
      .map(([key, value]) => [key, JSON.stringify(value)?.length ?? 0] as const)
      .sort((a, b) => b[1] - a[1])[0] ?? ["request"];
    const field = FIELD_NAMES[name] ?? name;
    throw new RequestTooLargeError(
      field,
      `is too large: the request is ${bytes} bytes, over the ${limit} bytes one request to the sandbox may carry`,
    );
  }
  if (body?.length) return encodeFrame(header, body);
  const { type, id, ...fields } = header;
  return encodeFrame({ type, id, fieldsInBody: true }, Buffer.from(JSON.stringify(fields), "utf8"));
}

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
