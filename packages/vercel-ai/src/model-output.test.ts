// The AI SDK wrapping of a tool's output (core's tests cover the text and images themselves).
import { describe, expect, it } from "vitest";
import { toModelOutput } from "./model-output.ts";

describe("toModelOutput", () => {
  it("is plain text without images, content with image parts otherwise", () => {
    expect(toModelOutput("hi")).toEqual({ type: "text", value: "hi" });
    expect(toModelOutput({ text: "t", images: [] })).toEqual({ type: "text", value: "t" });
    expect(toModelOutput({ text: "t", images: [{ mediaType: "image/png", data: "AA==" }] })).toEqual({
      type: "content",
      value: [
        { type: "text", text: "t" },
        { type: "file", mediaType: "image/png", data: { type: "data", data: "AA==" } },
      ],
    });
  });
});
