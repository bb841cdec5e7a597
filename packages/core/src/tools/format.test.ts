// What the model reads, without a sandbox: cutting, sections, images, notes.
import { describe, expect, it } from "vitest";
import type { Execution } from "../types.ts";
import { clip, formatCommand, formatExecution, formatListing } from "./format.ts";

const limits = { maxOutputChars: 100, timeoutMs: 60_000 };
const execution = (over: Partial<Execution>): Execution => ({
  results: [],
  stdout: "",
  stderr: "",
  status: "ok",
  truncated: false,
  durationMs: 1,
  ...over,
});

describe("clip", () => {
  it("keeps short text and cuts long text in the middle with a note", () => {
    expect(clip("short", 100)).toBe("short");
    const cut = clip(`${"a".repeat(500)}END`, 100);
    expect(cut.startsWith("a".repeat(60))).toBe(true);
    expect(cut.endsWith(`${"a".repeat(37)}END`)).toBe(true);
    expect(cut).toContain("[... 403 characters cut here: output is limited to 100 characters per stream;");
  });

  it("drops terminal colour codes", () => {
    expect(clip("\u001b[31mred\u001b[0m", 100)).toBe("red");
  });
});

describe("formatExecution", () => {
  it("lays out stdout, stderr, displayed values and the result, and attaches images", () => {
    const out = formatExecution(
      execution({
        stdout: "hello\n",
        stderr: "warning\n",
        results: [
          { text: "<Figure size 640x480 with 1 Axes>", png: "iVBORw0KGgo=", isMainResult: false },
          { text: "   a\n0  1", html: "<table/>", isMainResult: false },
          { text: "42", isMainResult: true },
        ],
      }),
      limits,
    );
    expect(out.text).toBe(
      "stdout:\nhello\n\nstderr:\nwarning\n\ndisplay:\n[image 1: image/png, attached]\n   a\n0  1\n\nresult:\n42",
    );
    expect(out.images).toEqual([{ mediaType: "image/png", data: "iVBORw0KGgo=" }]);
  });

  it("spells out the error and notes why the code stopped", () => {
    const out = formatExecution(
      execution({
        status: "timeout",
        error: { name: "KeyboardInterrupt", value: "", traceback: "Traceback (most recent call last):\n  ..." },
      }),
      limits,
    );
    expect(out.text).toContain("error: KeyboardInterrupt: \n\ntraceback:\nTraceback (most recent call last):");
    expect(out.text).toContain("ran longer than the 60 s limit");
    expect(formatExecution(execution({ status: "oom" }), limits).text).toContain("ran out of memory");
  });

  it("says so when the code printed nothing", () => {
    expect(formatExecution(execution({}), limits).text).toBe("(the code ran and printed nothing)");
  });

  it("does not attach SVG, and caps images per call", () => {
    const many = Array.from({ length: 10 }, () => ({ png: "AA==", isMainResult: false }));
    const results = [{ svg: "<svg/>", isMainResult: false }, ...many];
    const out = formatExecution(execution({ results }), { ...limits, maxOutputChars: 1000 });
    expect(out.images).toHaveLength(8);
    expect(out.text).toContain("SVG image of 6 characters, not shown");
    expect(out.text).toContain("[image 9: not attached, at most 8 images per call]");
  });
});

describe("formatCommand", () => {
  it("starts with the exit code", () => {
    const text = formatCommand(
      { exitCode: 2, stdout: "", stderr: "no such file\n", status: "error", truncated: true, durationMs: 1 },
      limits,
    );
    expect(text).toBe(
      "exit code: 2\n\nstderr:\nno such file\n\nThe sandbox dropped output beyond its per-stream limit (1 MiB by default).",
    );
  });
});

describe("formatListing", () => {
  const entry = (name: string, type: "file" | "directory" | "symlink", size = 0) => ({
    name,
    path: `/workspace/${name}`,
    type,
    size,
    mode: 0o644,
    modifiedAt: "",
  });

  it("puts folders first and gives sizes", () => {
    expect(
      formatListing(
        "/workspace",
        [entry("b.csv", "file", 2048), entry("plots", "directory"), entry("l", "symlink")],
        10,
      ),
    ).toBe("/workspace (3 entries):\nplots/\nb.csv  2.0 KiB\nl (symlink)");
    expect(formatListing("/workspace/x", [], 10)).toBe("/workspace/x is empty.");
  });

  it("caps long listings", () => {
    const entries = Array.from({ length: 5 }, (_, i) => entry(`f${i}`, "file", i));
    expect(formatListing("/d", entries, 2)).toBe("/d (5 entries):\nf0  0 B\nf1  1 B\n[... 3 more entries not shown]");
  });
});
