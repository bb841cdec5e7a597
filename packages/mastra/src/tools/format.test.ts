import type { Execution } from "@kiln/core";
import { FileNotFoundError, InvalidArgumentError, SandboxFileError, SandboxNotFoundError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import {
  commandOutput,
  decodeText,
  executionOutput,
  formatFile,
  formatModelFault,
  sniffImage,
  toModelOutput,
} from "./format.ts";

const limits = { maxOutputChars: 100, timeoutMs: 60_000 };
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

function execution(overrides: Partial<Execution>): Execution {
  return { results: [], stdout: "", stderr: "", status: "ok", truncated: false, durationMs: 5, ...overrides };
}

// Core's tests cover the text itself; these cover what Mastra's tools add around it.
describe("tool outputs", () => {
  it("wraps core's text: ok follows the run, images only when there are some", () => {
    const chart = execution({ results: [{ png: "iVBORw0K", isMainResult: false }] });
    expect(executionOutput(chart, limits)).toEqual({
      ok: true,
      text: "display:\n[image 1: image/png, attached]",
      images: [{ mediaType: "image/png", data: "iVBORw0K" }],
    });
    const failed = executionOutput(
      execution({ status: "error", error: { name: "NameError", value: "x", traceback: "" } }),
      limits,
    );
    expect(failed).toEqual({ ok: false, text: "error: NameError: x" });
    expect(executionOutput(execution({ status: "timeout" }), limits).ok).toBe(false);
  });

  it("marks a failed command not ok, its output still readable", () => {
    const result = {
      exitCode: 2,
      stdout: "",
      stderr: "nope",
      status: "error" as const,
      truncated: false,
      durationMs: 1,
    };
    expect(commandOutput(result, limits)).toEqual({ ok: false, text: "exit code: 2\n\nstderr:\nnope" });
    expect(commandOutput({ ...result, exitCode: 0, status: "ok" }, limits).ok).toBe(true);
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
