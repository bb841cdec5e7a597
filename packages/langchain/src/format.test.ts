import type { CommandResult, Execution } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { cut, formatCommand, formatExecution, formatFile, formatListing } from "./format.ts";

const run = (over: Partial<Execution>): Execution => ({
  results: [],
  stdout: "",
  stderr: "",
  status: "ok",
  truncated: false,
  durationMs: 1,
  ...over,
});
const cmd = (over: Partial<CommandResult>): CommandResult => ({
  exitCode: 0,
  stdout: "",
  stderr: "",
  status: "ok",
  truncated: false,
  durationMs: 1,
  ...over,
});
const opts = { timeoutMs: 60_000, maxChars: 100 };
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2]).toString("base64");

describe("cut", () => {
  it("leaves short text alone and keeps the start and the end of long text, saying how much was cut", () => {
    expect(cut("short", 10)).toBe("short");
    const long = `${"a".repeat(100)}${"b".repeat(100)}`;
    const out = cut(long, 50);
    expect(out.startsWith("a".repeat(30))).toBe(true);
    expect(out.endsWith("b".repeat(20))).toBe(true);
    expect(out).toContain("[... 150 characters cut: output over 50 characters");
  });
});

describe("formatExecution", () => {
  it("lists stdout, stderr, display values and the main result as text", () => {
    const out = formatExecution(
      run({
        stdout: "hi\n",
        stderr: "warn\n",
        results: [
          { html: "<b>x</b>", text: "x", isMainResult: false },
          { json: { a: 1 }, isMainResult: true },
        ],
      }),
      opts,
    );
    expect(out).toBe('stdout:\nhi\n\nstderr:\nwarn\n\ndisplay:\nx\n\nresult:\n{\n  "a": 1\n}');
  });

  it("puts images in standard image blocks after the text, at most four", () => {
    const results = Array.from({ length: 6 }, () => ({ png: PNG, text: "<Figure>", isMainResult: false }));
    const out = formatExecution(run({ results: [...results, { jpeg: "/9j/", isMainResult: true }] }), opts);
    expect(Array.isArray(out)).toBe(true);
    const blocks = out as Exclude<typeof out, string>;
    expect(blocks[0]?.type).toBe("text");
    expect(blocks.slice(1)).toEqual(
      Array.from({ length: 4 }, () => ({ type: "image", mimeType: "image/png", data: PNG })),
    );
    const text = (blocks[0] as { text: string }).text;
    expect(text).toContain("display: [image 4 (image/png), attached below]");
    expect(text).toContain("[3 more image(s) not shown: at most 4 per call; save figures to files]");
  });

  it("turns the user's error into readable text with its traceback", () => {
    const out = formatExecution(
      run({ status: "error", error: { name: "KeyError", value: "'x'", traceback: "Traceback...\nKeyError: 'x'\n" } }),
      opts,
    );
    expect(out).toBe("error: KeyError: 'x'\n\ntraceback:\nTraceback...\nKeyError: 'x'");
  });

  it("says what a timeout, an out-of-memory kill and the sandbox's own output cap mean", () => {
    expect(formatExecution(run({ status: "timeout" }), { ...opts, timeoutMs: 2_000 })).toContain("Timed out after 2 s");
    expect(formatExecution(run({ status: "oom" }), opts)).toContain("Ran out of memory");
    expect(formatExecution(run({ stdout: "x", truncated: true }), opts)).toContain("sandbox also cut this output");
  });

  it("says so when a cell printed nothing", () => {
    expect(formatExecution(run({}), opts)).toContain("ran without output");
  });
});

describe("formatCommand", () => {
  it("starts with the exit code and shows each stream", () => {
    expect(formatCommand(cmd({ stdout: "a\n", stderr: "b\n", exitCode: 2, status: "error" }), opts)).toBe(
      "exit code: 2\nstdout:\na\nstderr:\nb",
    );
    expect(formatCommand(cmd({}), opts)).toBe("exit code: 0\n[no output]");
    expect(formatCommand(cmd({ exitCode: -1, status: "timeout" }), opts)).toContain("Timed out after 60 s");
  });
});

describe("formatListing", () => {
  it("sorts entries, marks directories and shows file sizes", () => {
    const entry = (name: string, type: "file" | "directory" | "symlink", size = 0) => ({
      name,
      path: `/workspace/${name}`,
      type,
      size,
      mode: 0o644,
      modifiedAt: "",
    });
    expect(
      formatListing("/workspace", [entry("z.csv", "file", 2048), entry("a", "directory"), entry("l", "symlink")]),
    ).toBe("/workspace (3 entries):\na/\nl (symlink)\nz.csv (2.0 KiB)");
    expect(formatListing("/workspace/e", [])).toBe("/workspace/e is empty.");
  });
});

describe("formatFile", () => {
  it("returns images as image blocks, text as text, and describes other binaries", () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]);
    expect(formatFile("/w/c.png", png, 100)).toEqual([
      { type: "text", text: "/w/c.png (image/png, 6 B), attached below:" },
      { type: "image", mimeType: "image/png", data: Buffer.from(png).toString("base64") },
    ]);
    expect(formatFile("/w/a.txt", new TextEncoder().encode("héllo"), 100)).toBe("héllo");
    expect(formatFile("/w/a.bin", new Uint8Array([1, 0, 2]), 100)).toContain("is a binary file (3 B)");
    expect(formatFile("/w/e.txt", new Uint8Array(), 100)).toBe("/w/e.txt is empty.");
  });
});
