import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.ts";

describe("parseDuration", () => {
  it("reads units and combinations", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration("2d")).toBe(172_800_000);
  });
  it("takes a bare number as seconds", () => {
    expect(parseDuration("10")).toBe(10_000);
  });
  it("refuses what is not a duration", () => {
    for (const bad of ["", "s", "10x", "-5s", "0s", "1h 30m", "5 m", "abc"]) {
      expect(() => parseDuration(bad), bad).toThrow(/duration|longer than zero/);
    }
  });
});

describe("formatDuration", () => {
  it("prints short forms", () => {
    expect(formatDuration(12)).toBe("12ms");
    expect(formatDuration(1_500)).toBe("1.5s");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(3_600_000)).toBe("1h");
  });
  it("rounds to whole seconds before splitting into units (never 59m60s)", () => {
    expect(formatDuration(3_599_999)).toBe("1h");
    expect(formatDuration(119_700)).toBe("2m");
    expect(formatDuration(5_399_600)).toBe("1h30m");
  });
});
