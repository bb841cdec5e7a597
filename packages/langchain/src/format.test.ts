import { describe, expect, it } from "vitest";
import { toContent } from "./format.ts";

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
