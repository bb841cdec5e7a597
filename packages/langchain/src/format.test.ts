import { describe, expect, it } from "vitest";
import { formatFile, toContent } from "./format.ts";

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2]).toString("base64");

describe("toContent", () => {
  it("gives text alone as a string, and text with images as a text block then standard image blocks", () => {
    expect(toContent({ text: "stdout:\nhi", images: [] })).toBe("stdout:\nhi");
    expect(
      toContent({
        text: "display:\n[image 1: image/png, attached]",
        images: [
          { mediaType: "image/png", data: PNG },
          { mediaType: "image/jpeg", data: "/9j/" },
        ],
      }),
    ).toEqual([
      { type: "text", text: "display:\n[image 1: image/png, attached]" },
      { type: "image", mimeType: "image/png", data: PNG },
      { type: "image", mimeType: "image/jpeg", data: "/9j/" },
    ]);
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

  it("cuts long text with core's note", () => {
    const out = formatFile("/w/long.txt", new TextEncoder().encode("a".repeat(300)), 100);
    expect(out).toContain("[... 200 characters cut here: output is limited to 100 characters per stream");
  });
});
