import { describe, expect, it } from "vitest";
import { readSse, SseParser } from "./sse.ts";

describe("SseParser", () => {
  it("parses events, joins data lines and skips comments", () => {
    const p = new SseParser();
    const events = p.push(': keep-alive\n\ndata: {"a":1}\n\nevent: note\ndata: one\ndata: two\nid: 7\n\n');
    expect(events).toEqual([
      { event: "message", data: '{"a":1}' },
      { event: "note", data: "one\ntwo", id: "7" },
    ]);
  });

  it("handles CRLF, CR and LF line ends, split anywhere, and a leading BOM", () => {
    const text = "\ufeffdata: a\r\n\r\ndata:b\r\rdata: c\n\n";
    const whole = new SseParser().push(text);
    expect(whole.map((e) => e.data)).toEqual(["a", "b", "c"]);
    // Every split point, including between \r and \n.
    for (let i = 1; i < text.length; i++) {
      const p = new SseParser();
      const got = [...p.push(text.slice(0, i)), ...p.push(text.slice(i))];
      expect(
        got.map((e) => e.data),
        `split at ${i}`,
      ).toEqual(["a", "b", "c"]);
    }
  });

  it("does not dispatch an event without data, nor an unfinished one", () => {
    const p = new SseParser();
    expect(p.push("event: x\n\nretry: 5\n\ndata: half")).toEqual([]);
    expect(p.push("\n\n")).toEqual([{ event: "message", data: "half" }]);
  });

  it("keeps a value's own spaces after the first, and a field without a colon", () => {
    expect(new SseParser().push("data:  two spaces\ndata\n\n")).toEqual([{ event: "message", data: " two spaces\n" }]);
  });
});

describe("readSse", () => {
  it("reads events from a byte stream split inside a multi-byte character", async () => {
    const bytes = new TextEncoder().encode('data: {"text":"héllo ✓"}\n\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside "é"
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut));
        controller.close();
      },
    });
    const events = [];
    for await (const e of readSse(body)) events.push(JSON.parse(e.data));
    expect(events).toEqual([{ text: "héllo ✓" }]);
  });
});
