import { describe, expect, it } from "vitest";
import { StreamDemuxer } from "./demux.ts";

function packet(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

describe("StreamDemuxer", () => {
  it("separates stdout and stderr across arbitrary chunking", () => {
    const wire = Buffer.concat([packet(1, "out1"), packet(2, "err"), packet(1, "out2")]);
    for (let split = 0; split <= wire.length; split++) {
      let out = "";
      let err = "";
      const demuxer = new StreamDemuxer(
        (c) => (out += c),
        (c) => (err += c),
      );
      demuxer.push(wire.subarray(0, split));
      demuxer.push(wire.subarray(split));
      expect([out, err]).toEqual(["out1out2", "err"]);
    }
  });
});
