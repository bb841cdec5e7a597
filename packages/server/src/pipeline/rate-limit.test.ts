import { describe, expect, it } from "vitest";
import { FailureLimiter } from "./rate-limit.ts";

describe("FailureLimiter", () => {
  it("allows 30 failures a minute per address, then refuses until the oldest leaves the window", () => {
    let now = 1_000_000;
    const limiter = new FailureLimiter({ now: () => now });
    for (let i = 0; i < 29; i++) {
      limiter.fail("a");
      now += 1000;
    }
    expect(limiter.retryAfter("a")).toBe(0);
    limiter.fail("a");
    // The first failure was at 1_000_000: it leaves the window at 1_060_000, 31 s from now.
    expect(limiter.retryAfter("a")).toBe(31);
    expect(limiter.retryAfter("b")).toBe(0);
    now = 1_060_001;
    expect(limiter.retryAfter("a")).toBe(0);
  });

  it("keeps memory bounded per address", () => {
    const limiter = new FailureLimiter({ limit: 3, now: () => 5 });
    for (let i = 0; i < 10_000; i++) limiter.fail("x");
    expect(limiter.retryAfter("x")).toBeGreaterThan(0);
  });
});
