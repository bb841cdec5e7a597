import { describe, expect, it } from "vitest";
import { ago, colorsFor, fit, formatBytes, renderTable } from "./output.ts";

describe("tables", () => {
  it("keep natural widths when there is room", () => {
    expect(fit([10, 20, 5], 80)).toEqual([10, 20, 5]);
    expect(fit([10, 20, 5], undefined)).toEqual([10, 20, 5]);
  });
  it("shrink the widest column first to fit the terminal", () => {
    expect(fit([10, 60, 12], 50)).toEqual([10, 28, 12]);
    expect(fit([10, 60, 12], 50).reduce((a, b) => a + b)).toBe(50);
  });
  it("render aligned columns without borders, each line within the width, long cells cut", () => {
    const text = renderTable(["ID", "NAME"], [["abc", "a-rather-long-name-that-is-cut"]], 24);
    const lines = text.split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ID\s+NAME$/);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(24);
    expect(lines[1]).toMatch(/^abc\s+a-rather-long-n\S*…$/);
  });
});

describe("colour", () => {
  const tty = { isTTY: true } as NodeJS.WriteStream;
  it("is on for a terminal", () => {
    expect(colorsFor(tty, {}).red("x")).not.toBe("x");
  });
  it("is off with NO_COLOR, off the terminal, and for TERM=dumb", () => {
    expect(colorsFor(tty, { NO_COLOR: "1" }).red("x")).toBe("x");
    expect(colorsFor({ isTTY: false } as NodeJS.WriteStream, {}).red("x")).toBe("x");
    expect(colorsFor(tty, { TERM: "dumb" }).red("x")).toBe("x");
  });
});

describe("formats", () => {
  it("sizes and ages", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(300 * 1024 * 1024)).toBe("300 MiB");
    expect(ago(new Date(0).toISOString(), 90_000)).toBe("1 minute ago");
  });
});
