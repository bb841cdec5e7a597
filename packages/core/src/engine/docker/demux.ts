/**
 * Splits Docker's multiplexed attach stream (8-byte header: stream type, 3 zero bytes,
 * big-endian u32 length, then the payload) into stdout and stderr.
 */
export class StreamDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  #onStdout: (chunk: Buffer) => void;
  #onStderr: (chunk: Buffer) => void;

  constructor(onStdout: (chunk: Buffer) => void, onStderr: (chunk: Buffer) => void) {
    this.#onStdout = onStdout;
    this.#onStderr = onStderr;
  }

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 8) {
      const length = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + length) break;
      const payload = this.#pending.subarray(8, 8 + length);
      if (this.#pending[0] === 2) this.#onStderr(payload);
      else this.#onStdout(payload);
      this.#pending = this.#pending.subarray(8 + length);
    }
  }
}
