import { describe, expect, it } from "vitest";
import { toModelOutput } from "./format.ts";

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
