import { describe, expect, it } from "vitest";
import { sandboxNameFor, uniqueSandboxName } from "./names.ts";

const VALID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

describe("sandboxNameFor", () => {
  it("keeps a simple id readable", () => {
    expect(sandboxNameFor("thread-42")).toBe("mastra-thread-42");
    expect(sandboxNameFor("3f2b9c1e-5d7a-4b8e-9c0d-1a2b3c4d5e6f")).toBe("mastra-3f2b9c1e-5d7a-4b8e-9c0d-1a2b3c4d5e6f");
  });

  it("makes any id a valid, stable, collision-free name", () => {
    const ids = ["user@example.com/chat 1", "user@example.com/chat 2", "ü".repeat(80), "x".repeat(200), "--", "a/b"];
    const names = ids.map(sandboxNameFor);
    for (const name of names) expect(name).toMatch(VALID);
    expect(new Set(names).size).toBe(ids.length);
    expect(sandboxNameFor("user@example.com/chat 1")).toBe(names[0]);
    expect(names[0]).toMatch(/^mastra-user-example.com-chat-1-[0-9a-f]{12}$/);
  });

  it("gives each tool set its own name", () => {
    expect(uniqueSandboxName()).toMatch(VALID);
    expect(uniqueSandboxName()).not.toBe(uniqueSandboxName());
  });
});
