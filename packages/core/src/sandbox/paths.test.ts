import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../errors.ts";
import { resolveSandboxPath } from "./paths.ts";

describe("resolveSandboxPath", () => {
  it("resolves relative paths against /workspace and normalises", () => {
    expect(resolveSandboxPath("path", "a/b.txt")).toBe("/workspace/a/b.txt");
    expect(resolveSandboxPath("path", "./a//b/")).toBe("/workspace/a/b");
    expect(resolveSandboxPath("path", "/etc/hosts")).toBe("/etc/hosts");
    expect(resolveSandboxPath("path", "/")).toBe("/");
  });

  it("refuses .., NUL, empty and non-strings, naming the field", () => {
    for (const bad of ["..", "a/../../b", "/workspace/..", "x\0y", "", 3, null, { path: "a" }]) {
      expect(() => resolveSandboxPath("remotePath", bad)).toThrow(InvalidArgumentError);
      expect(() => resolveSandboxPath("remotePath", bad)).toThrow(/^remotePath/);
    }
  });
});
