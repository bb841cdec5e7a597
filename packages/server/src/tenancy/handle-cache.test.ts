import type { Sandbox } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { HandleCache } from "./handle-cache.ts";

const box = (id: string) => ({ id }) as Sandbox;

describe("HandleCache", () => {
  it("keeps a handle for its TTL only, and forgets every key of a deleted sandbox", () => {
    let now = 0;
    const cache = new HandleCache({ ttlMs: 100, now: () => now });
    cache.set("o\0dev", box("a"));
    cache.set("o\0aaaaaaaaaaaa", box("a"));
    cache.set("o\0other", box("b"));
    expect(cache.get("o\0dev")?.id).toBe("a");
    cache.forget("a");
    expect(cache.get("o\0dev")).toBeUndefined();
    expect(cache.get("o\0aaaaaaaaaaaa")).toBeUndefined();
    expect(cache.get("o\0other")?.id).toBe("b");
    now = 100;
    expect(cache.get("o\0other")).toBeUndefined();
  });
});
