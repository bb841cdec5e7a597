import { describe, expect, it } from "vitest";
import { checkpointVersion } from "./checkpoints.ts";
import { commandLine, definedEnv, shellQuote } from "./shell.ts";

describe("shell helpers", () => {
  it("quotes only what needs quoting", () => {
    expect(shellQuote("data/file-1.csv")).toBe("data/file-1.csv");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("it's $HOME")).toBe(`'it'"'"'s $HOME'`);
    expect(commandLine("echo", ["a b", "c"])).toBe("echo 'a b' c");
    expect(commandLine("ls -la | wc -l", undefined)).toBe("ls -la | wc -l");
  });

  it("merges env layers, a later undefined unsetting an earlier value", () => {
    expect(definedEnv({ A: "1", B: "2" }, { B: undefined, C: "3" }, undefined)).toEqual({ A: "1", C: "3" });
  });
});

describe("checkpointVersion", () => {
  it("makes valid, time-ordered Kiln names from any checkpoint name", () => {
    const a = checkpointVersion("proj", 1_000);
    const b = checkpointVersion("proj", 2_000_000_000_000);
    expect(a).toBe("proj.0000000rs");
    expect(a < b).toBe(true);
    expect(checkpointVersion("x".repeat(100), 1).length).toBe(63);
  });
});
