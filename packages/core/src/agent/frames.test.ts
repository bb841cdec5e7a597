import { describe, expect, it } from "vitest";
import {
  encodeFrame,
  encodeRequest,
  FrameDecoder,
  INLINE_HEADER_BYTES,
  MAX_BODY_BYTES,
  RequestTooLargeError,
} from "./frames.ts";

describe("frames", () => {
  it("round-trips headers and binary bodies split at every byte boundary", () => {
    const body = Buffer.from([0, 255, 10, 13, 0]);
    const wire = Buffer.concat([
      encodeFrame({ type: "stdout", id: 7 }, body),
      encodeFrame({ type: "exit", id: 7, exitCode: 0, note: "ünïcode" }),
    ]);
    for (let split = 0; split <= wire.length; split++) {
      const decoder = new FrameDecoder();
      const frames = [...decoder.push(wire.subarray(0, split)), ...decoder.push(wire.subarray(split))];
      expect(frames).toHaveLength(2);
      expect(frames[0]?.header).toEqual({ type: "stdout", id: 7 });
      expect(Buffer.compare(frames[0]?.body ?? Buffer.alloc(0), body)).toBe(0);
      expect(frames[1]?.header).toEqual({ type: "exit", id: 7, exitCode: 0, note: "ünïcode" });
      expect(frames[1]?.body.length).toBe(0);
    }
  });

  it("decodes many frames fed one byte at a time", () => {
    const wire = Buffer.concat(
      Array.from({ length: 50 }, (_, i) => encodeFrame({ type: "data", id: i }, Buffer.alloc(i, i))),
    );
    const decoder = new FrameDecoder();
    const ids: number[] = [];
    for (const byte of wire) for (const f of decoder.push(Buffer.from([byte]))) ids.push(f.header.id);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("refuses a frame over the limits instead of buffering it", () => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(2, 0);
    head.writeUInt32BE(MAX_BODY_BYTES + 1, 4);
    expect(() => new FrameDecoder().push(head)).toThrow(/over the limits/);
  });

  it("moves a big request's fields into the body, and refuses one too big naming the field", () => {
    const small = encodeRequest({ type: "exec", id: 1, argv: ["echo"] });
    expect(small.equals(encodeFrame({ type: "exec", id: 1, argv: ["echo"] }))).toBe(true);
    const code = "x".repeat(INLINE_HEADER_BYTES + 1);
    const [frame] = new FrameDecoder().push(encodeRequest({ type: "run_code", id: 2, code, language: "python" }));
    expect(frame?.header).toEqual({ type: "run_code", id: 2, fieldsInBody: true });
    expect(JSON.parse(frame?.body.toString("utf8") ?? "")).toEqual({ code, language: "python" });
    const tooBig = () => encodeRequest({ type: "exec", id: 3, argv: ["echo", "y".repeat(33 * 1024 * 1024)] });
    expect(tooBig).toThrow(RequestTooLargeError);
    expect(tooBig).toThrow(/over the 33554432 bytes/);
    try {
      tooBig();
    } catch (err) {
      expect((err as RequestTooLargeError).field).toBe("command");
    }
  });
});
