import { describe, expect, it } from "vitest";
import { checkNamePrefix, sandboxNameForThread, sandboxNameForToolSet } from "./sandbox-name.ts";

const VALID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

describe("sandboxNameForThread", () => {
  it("keeps a thread id that is already a valid name", () => {
    expect(sandboxNameForThread("chat-42", "lc-")).toBe("lc-chat-42");
    expect(sandboxNameForThread("0b1e7c1e-2f1a-4a57-9a5e-6f2b8a1f9c3d", "lc-")).toBe(
      "lc-0b1e7c1e-2f1a-4a57-9a5e-6f2b8a1f9c3d",
    );
  });

  it("turns odd, long or empty ids into valid names with a hash of the whole id", () => {
    for (const id of ["user@example.com/chat 1", "x".repeat(200), "", "日本語", "../..", " "]) {
      const name = sandboxNameForThread(id, "lc-");
      expect(name, id).toMatch(VALID);
      expect(name.startsWith("lc-")).toBe(true);
      expect(sandboxNameForThread(id, "lc-")).toBe(name); // stable
    }
    expect(sandboxNameForThread("user@example.com/chat 1", "lc-")).toMatch(/^lc-user_example.com_chat_1-[0-9a-f]{16}$/);
  });

  it("never maps two different ids to one name", () => {
    const ids = ["a b", "a_b", "a/b", "a b ", "x".repeat(100), `${"x".repeat(99)}y`];
    const names = ids.map((id) => sandboxNameForThread(id, "lc-"));
    expect(new Set(names).size).toBe(ids.length);
  });
});

describe("sandboxNameForToolSet", () => {
  it("is a fresh valid name each time", () => {
    const a = sandboxNameForToolSet("lc-");
    expect(a).toMatch(/^lc-toolset-[0-9a-f]{12}$/);
    expect(sandboxNameForToolSet("lc-")).not.toBe(a);
  });
});

describe("checkNamePrefix", () => {
  it("accepts prefixes that start valid names and refuses others", () => {
    expect(checkNamePrefix("app1-")).toBe("app1-");
    for (const bad of ["", "-x", "a b", "x".repeat(31)]) expect(() => checkNamePrefix(bad), bad).toThrow(/namePrefix/);
  });
});
