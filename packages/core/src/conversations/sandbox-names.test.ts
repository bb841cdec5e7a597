import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../errors.ts";
import { checkNamePrefix, sandboxNameFor } from "./sandbox-names.ts";

describe("sandboxNameFor", () => {
  it("keeps ids that already make a valid name", () => {
    expect(sandboxNameFor("lc-", "chat-42")).toBe("lc-chat-42");
  });

  it("hashes ids that do not, so different ids never share a name", () => {
    const a = sandboxNameFor("ai-", "a b");
    const b = sandboxNameFor("ai-", "a_b");
    expect(a).toMatch(/^ai-a_b-[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
    expect(sandboxNameFor("ai-", "日本")).toMatch(/^ai-[0-9a-f]{16}$/);
    const long = sandboxNameFor("mastra-", "x".repeat(500));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(sandboxNameFor("mastra-", "x".repeat(500))).toBe(long);
  });

  it("refuses empty ids and bad prefixes", () => {
    expect(() => sandboxNameFor("p-", "")).toThrow(InvalidArgumentError);
    expect(() => checkNamePrefix("-bad")).toThrow(/namePrefix/);
    expect(checkNamePrefix("ok-")).toBe("ok-");
  });
});
