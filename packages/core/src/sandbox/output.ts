/**
 * Collects one output stream of a command or cell: bounded in memory, decoded as UTF-8 with
 * replacement characters, streamed to a callback chunk by chunk as it arrives.
 */
export class OutputCollector {
  readonly #limit: number;
  readonly #onChunk: ((chunk: string) => void) | undefined;
  readonly #streamDecoder = new TextDecoder("utf-8", { fatal: false });
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  truncated = false;

  constructor(limit: number, onChunk?: (chunk: string) => void) {
    this.#limit = limit;
    this.#onChunk = onChunk;
  }

  push(chunk: Buffer): void {
    const room = this.#limit - this.#bytes;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.#chunks.push(kept);
    this.#bytes += kept.length;
    if (this.#onChunk) {
      const text = this.#streamDecoder.decode(kept, { stream: true });
      if (text) this.#safeCallback(text);
    }
  }

  /** The whole output as text; flushes a trailing partial character to the callback. */
  text(): string {
    if (this.#onChunk) {
      const tail = this.#streamDecoder.decode();
      if (tail) this.#safeCallback(tail);
    }
    return new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(this.#chunks));
  }

  // A throwing user callback must not break the protocol handling of the call.
  #safeCallback(text: string): void {
    try {
      this.#onChunk?.(text);
    } catch {
      /* the caller's callback failed; the output is still collected */
    }
  }
}
