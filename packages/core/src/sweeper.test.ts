import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { ownerAlive, processOwner } from "./sweeper.ts";

describe("ownerAlive", () => {
  it("knows this process is alive and a finished one on this host is not", () => {
    expect(ownerAlive(processOwner())).toBe(true);
    expect(ownerAlive(`${hostname()}/2147483646`)).toBe(false);
    expect(ownerAlive(undefined)).toBe(false);
  });

  it("never judges a process on another host dead", () => {
    expect(ownerAlive("some-other-host/1")).toBe(true);
  });
});
