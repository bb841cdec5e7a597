// readTextFile's line ranges, without a sandbox.
import { describe, expect, it } from "vitest";
import { sliceLines } from "./sandbox-session.ts";

describe("sliceLines", () => {
  it("takes 1-based inclusive ranges and keeps the file's line ending", () => {
    expect(sliceLines("a\nb\nc", 2)).toBe("b\nc");
    expect(sliceLines("a\nb\nc", 1, 1)).toBe("a");
    expect(sliceLines("a\r\nb\r\nc", 2, 9)).toBe("b\r\nc");
    expect(sliceLines("a\nb", undefined, undefined)).toBe("a\nb");
  });
});
