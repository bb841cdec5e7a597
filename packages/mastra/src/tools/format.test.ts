import type { Execution, FileEntry } from "@kiln/core";
import { FileNotFoundError, InvalidArgumentError, SandboxFileError, SandboxNotFoundError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import {
  cutMiddle,
  decodeText,
  formatCommand,
  formatExecution,
  formatFile,
  formatListing,
  formatModelFault,
  sniffImage,
  toModelOutput,
} from "./format.ts";

const limits = { maxOutputChars: 100, timeoutMs: 60_000 };
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

function execution(overrides: Partial<Execution>): Execution {
  return { results: [], stdout: "", stderr: "", status: "ok", truncated: false, durationMs: 5, ...overrides };
}

describe("cutMiddle", () => {
  it("keeps short text and cuts long text in the middle with a count", () => {
    expect(cutMiddle("short", 10)).toBe("short");
    const cut = cutMiddle("a".repeat(50) + "b".repeat(50), 20);
    expect(cut).toBe(`${"a".repeat(10)}\n[... 80 characters cut ...]\n${"b".repeat(10)}`);
  });

  it("never splits a surrogate pair", () => {
    const cut = cutMiddle("😀".repeat(20), 11);
    expect(cut).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(cut).not.toMatch(/(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });
});

describe("formatExecution", () => {
  it("lists streams, results and images; images stay out of the text", () => {
    const out = formatExecution(
      execution({
        stdout: "total 415\n",
        results: [
          { png: "iVBORw0K", text: "<Figure size 640x480 with 1 Axes>", isMainResult: false },
          { text: "138.33", isMainResult: true },
        ],
      }),
      limits,
    );
    expect(out).toEqual({
      ok: true,
      text: "stdout:\ntotal 415\n\n[image 1: image/png, attached]\n\nOut:\n138.33",
      images: [{ mediaType: "image/png", data: "iVBORw0K" }],
    });
  });

  it("shows a user-code error readably and marks the call not ok", () => {
    const out = formatExecution(
      execution({
        status: "error",
        error: {
          name: "NameError",
          value: "name 'x' is not defined",
          traceback:
            "\u001b[31mTraceback (most recent call last):\u001b[0m\n  File \"<cell-1>\", line 1\nNameError: name 'x' is not defined",
        },
      }),
      limits,
    );
    expect(out.ok).toBe(false);
    expect(out.text).toBe(
      "Error: NameError: name 'x' is not defined\n\nTraceback (most recent call last):\n  File \"<cell-1>\", line 1\nNameError: name 'x' is not defined",
    );
  });

  it("says why a cell stopped, and when output was not all collected", () => {
    expect(formatExecution(execution({ status: "timeout" }), limits).text).toBe(
      "Stopped: the code ran longer than the limit of 60 s.",
    );
    expect(formatExecution(execution({ status: "oom" }), limits).text).toMatch(/ran out of memory/);
    expect(formatExecution(execution({ stdout: "x", truncated: true }), limits).text).toMatch(
      /only its start was kept/,
    );
    expect(formatExecution(execution({}), limits).text).toBe("(no output)");
  });

  it("describes output a model cannot see instead of dumping it", () => {
    const out = formatExecution(execution({ results: [{ svg: "<svg/>", isMainResult: true }] }), limits);
    expect(out.text).toMatch(/SVG output, 6 characters, not shown/);
    expect(formatExecution(execution({ results: [{ json: { a: 1 }, isMainResult: true }] }), limits).text).toBe(
      'Out:\n{\n  "a": 1\n}',
    );
  });
});

describe("formatCommand", () => {
  const result = { exitCode: 0, stdout: "", stderr: "", status: "ok" as const, truncated: false, durationMs: 1 };
  it("leads with the exit code", () => {
    expect(formatCommand({ ...result, stdout: "hi\n" }, limits)).toEqual({
      ok: true,
      text: "exit code 0\n\nstdout:\nhi",
    });
    expect(formatCommand({ ...result, exitCode: 2, status: "error", stderr: "nope" }, limits)).toEqual({
      ok: false,
      text: "exit code 2\n\nstdout: (empty)\n\nstderr:\nnope",
    });
    expect(formatCommand({ ...result, exitCode: 137, status: "timeout" }, limits).text).toMatch(
      /Stopped: the command ran longer than the limit of 60 s\.$/,
    );
  });
});

describe("files", () => {
  it("recognises images the model can view", () => {
    expect(sniffImage(PNG)).toBe("image/png");
    expect(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("image/jpeg");
    expect(sniffImage(Buffer.from("GIF89a"))).toBe("image/gif");
    expect(sniffImage(Buffer.from("hello"))).toBeUndefined();
  });

  it("tells text from binary", () => {
    expect(decodeText(Buffer.from("héllo"))).toBe("héllo");
    expect(decodeText(Buffer.from([0x61, 0x00, 0x62]))).toBeUndefined();
    expect(decodeText(Buffer.from([0xc3, 0x28]))).toBeUndefined();
  });

  it("attaches an image, describes binary, cuts long text from the top", () => {
    const image = formatFile("/workspace/c.png", PNG, limits, { maxImageBytes: 1000 });
    expect(image.images).toEqual([{ mediaType: "image/png", data: PNG.toString("base64") }]);
    expect(formatFile("/workspace/c.png", PNG, limits, { maxImageBytes: 4 }).text).toMatch(/too large to attach/);
    expect(formatFile("/workspace/b", Buffer.from([1, 0, 2]), limits, { maxImageBytes: 1000 }).text).toMatch(
      /binary file of 3 bytes/,
    );
    const long = formatFile("/workspace/t", Buffer.from("x".repeat(500)), limits, { maxImageBytes: 1000 });
    expect(long.text).toMatch(/^x{100}\n\[\.\.\. cut: showing the first 100 of 500 characters; read further/);
    expect(formatFile("/workspace/e", Buffer.alloc(0), limits, { maxImageBytes: 1 }).text).toBe(
      "/workspace/e is empty.",
    );
  });

  it("lists directories first and stops at the entry limit", () => {
    const entry = (name: string, type: FileEntry["type"]): FileEntry => ({
      name,
      path: `/workspace/${name}`,
      type,
      size: 3,
      mode: 0o644,
      modifiedAt: "",
    });
    const out = formatListing("/workspace", [entry("b.txt", "file"), entry("a", "directory"), entry("c", "file")], 2);
    expect(out.text).toBe(
      "/workspace (3 entries)\ndir   a/\nfile  b.txt  (3 bytes)\n[... 1 more entries not shown; narrow down with run_command (e.g. find, ls | grep)]",
    );
  });
});

describe("formatModelFault", () => {
  it("turns mistakes the model can fix into text and leaves infrastructure faults alone", () => {
    expect(formatModelFault(new FileNotFoundError("/workspace/x"))?.text).toBe(
      "Error: No such file or directory in the sandbox: /workspace/x.",
    );
    expect(formatModelFault(new InvalidArgumentError("path", "must not contain '..'"))?.ok).toBe(false);
    expect(formatModelFault(new SandboxFileError("/workspace/d", "EISDIR", "Is a directory"))?.text).toMatch(
      /It is a directory: use list_files\.$/,
    );
    expect(formatModelFault(new SandboxNotFoundError("x"))).toBeUndefined();
    expect(formatModelFault(new InvalidArgumentError("options.timeoutMs", "must be at least 1"))).toBeUndefined();
    expect(formatModelFault(new Error("socket hang up"))).toBeUndefined();
  });
});

describe("toModelOutput", () => {
  it("sends plain text, or text plus one media part per image", () => {
    expect(toModelOutput({ ok: true, text: "hi" })).toEqual({ type: "text", value: "hi" });
    expect(toModelOutput({ ok: true, text: "chart", images: [{ mediaType: "image/png", data: "AAA" }] })).toEqual({
      type: "content",
      value: [
        { type: "text", text: "chart" },
        { type: "media", data: "AAA", mediaType: "image/png" },
      ],
    });
  });
});
