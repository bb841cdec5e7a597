import { Kiln } from "@kiln/core";
import { afterAll, describe, expect, it } from "vitest";
import { createKilnTools } from "./create-kiln-tools.ts";

// No engine needed: the tools open sandboxes lazily, on the first call.
const kiln = new Kiln();
afterAll(() => kiln.close());

describe("createKilnTools options", () => {
  it("tells the model the idle limit, core's 15 minutes by default", () => {
    expect(createKilnTools({ kiln }).run_code.description).toMatch(/After 15 minutes without calls/);
  });

  it("says nothing about pauses when sandboxes are only released on dispose (0 or Infinity)", () => {
    for (const idleTimeoutMs of [0, Number.POSITIVE_INFINITY]) {
      expect(createKilnTools({ kiln, idleTimeoutMs }).run_code.description).not.toMatch(/paused/);
    }
  });

  it("rejects a negative idle limit", () => {
    expect(() => createKilnTools({ kiln, idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs/);
  });
});
