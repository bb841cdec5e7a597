import { describe, expect, it } from "vitest";
import { OutputCollector } from "./output.ts";

describe("OutputCollector", () => {
  it("keeps at most the limit and marks truncation", () => {
    const out = new OutputCollector(5);
    out.push(Buffer.from("abc"));
    out.push(Buffer.from("defgh"));
    out.push(Buffer.from("ijk"));
    expect(out.text()).toBe("abcde");
    expect(out.truncated).toBe(true);
  });

  it("streams whole characters to the callback even when a chunk splits one", () => {
    const seen: string[] = [];
    const out = new OutputCollector(100, (c) => seen.push(c));
    const euro = Buffer.from("€"); // three bytes
    out.push(Buffer.concat([Buffer.from("a"), euro.subarray(0, 1)]));
    out.push(euro.subarray(1));
    expect(seen).toEqual(["a", "€"]);
    expect(out.text()).toBe("a€");
  });

  it("replaces invalid UTF-8 and survives a throwing callback", () => {
    const out = new OutputCollector(100, () => {
      throw new Error("user callback bug");
    });
    out.push(Buffer.from([0x6f, 0x6b, 0xff]));
    expect(out.text()).toBe("ok\uFFFD");
  });
});
