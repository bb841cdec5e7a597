// The tools' pure parts: image sniffing, text detection, cutting, paths, which errors the model sees.
import { describe, expect, it } from "vitest";
import { FileNotFoundError, InvalidArgumentError, SandboxFileError, SandboxNotFoundError } from "../errors.ts";
import {
  cutHead,
  decodeText,
  resolveToolPath,
  sniffImage,
  toolErrorText,
  toolLimits,
  withRestartNote,
} from "./run-tool.ts";

const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

describe("sniffImage", () => {
  it("recognises the images a model can view by their first bytes, never by name", () => {
    expect(sniffImage(PNG)).toBe("image/png");
    expect(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("image/jpeg");
    expect(sniffImage(Buffer.from("GIF89a"))).toBe("image/gif");
    expect(sniffImage(Buffer.from("RIFF\0\0\0\0WEBPVP8 "))).toBe("image/webp");
    expect(sniffImage(Buffer.from("RIFF\0\0\0\0WAVEfmt "))).toBeUndefined();
    expect(sniffImage(Buffer.from("hello"))).toBeUndefined();
    expect(sniffImage(new Uint8Array())).toBeUndefined();
  });
});

describe("decodeText", () => {
  it("tells text from binary", () => {
    expect(decodeText(Buffer.from("héllo"))).toBe("héllo");
    expect(decodeText(Buffer.from([0x61, 0x00, 0x62]))).toBeUndefined();
    expect(decodeText(Buffer.from([0xc3, 0x28]))).toBeUndefined();
  });

  it("drops a character split by the cut at the end of a file's start", () => {
    const bytes = Buffer.from("aé"); // 61 c3 a9
    expect(decodeText(bytes.subarray(0, 2), true)).toBe("a");
    expect(decodeText(bytes.subarray(0, 2))).toBeUndefined();
  });
});

describe("cutHead", () => {
  it("keeps the start and says how to read on", () => {
    expect(cutHead("short", 10, "hint")).toBe("short");
    expect(cutHead("x".repeat(500), 100, "read on")).toBe(
      `${"x".repeat(100)}\n[... cut: showing the first 100 of 500 characters; read on]`,
    );
  });

  it("never splits a surrogate pair", () => {
    expect(cutHead(`${"a".repeat(9)}😀tail`, 10, "h").startsWith(`${"a".repeat(9)}\n`)).toBe(true);
  });
});

describe("resolveToolPath", () => {
  it("resolves against /workspace and folds '..'", () => {
    expect(resolveToolPath("data/a.csv")).toBe("/workspace/data/a.csv");
    expect(resolveToolPath("../tmp/x")).toBe("/tmp/x");
    expect(resolveToolPath("/etc/hosts")).toBe("/etc/hosts");
    expect(resolveToolPath(undefined)).toBe("/workspace");
    expect(resolveToolPath("  ")).toBe("/workspace");
    expect(() => resolveToolPath(42)).toThrow(InvalidArgumentError);
  });
});

describe("toolErrorText", () => {
  it("turns mistakes the model can fix into text and leaves infrastructure faults alone", () => {
    expect(toolErrorText(new FileNotFoundError("/workspace/x"))).toBe(
      "Error: No such file or directory in the sandbox: /workspace/x.",
    );
    expect(toolErrorText(new InvalidArgumentError("path", "must not contain '..'"))).toMatch(/^Error: path:/);
    expect(toolErrorText(new SandboxFileError("/workspace/d", "EISDIR", "Is a directory"))).toMatch(
      /It is a directory: use list_files\.$/,
    );
    expect(toolErrorText(new SandboxNotFoundError("x"))).toBeUndefined();
    expect(toolErrorText(new InvalidArgumentError("options.timeoutMs", "must be at least 1"))).toBeUndefined();
    expect(toolErrorText(new Error("socket hang up"))).toBeUndefined();
  });
});

describe("toolLimits", () => {
  it("fills the defaults and refuses a bad limit by name", () => {
    expect(toolLimits()).toEqual({ timeoutMs: 60_000, maxOutputChars: 12_000, maxImageBytes: 5_000_000 });
    expect(() => toolLimits({ timeoutMs: -1 })).toThrow(/timeoutMs: must be a positive number/);
    expect(() => toolLimits({ maxOutputChars: Number.NaN })).toThrow(/maxOutputChars/);
  });
});

describe("withRestartNote", () => {
  it("puts the same note before the output in every wrapper", () => {
    expect(withRestartNote({ text: "out" }, "started").text).toMatch(/^\[The sandbox had been stopped.*\]\n\nout$/s);
    expect(withRestartNote({ text: "out" }, undefined).text).toBe("out");
  });
});
