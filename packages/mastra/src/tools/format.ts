/**
 * Mastra's wrapping of core's tool results: images handed to Mastra as media parts (toModelOutput).
 */
import type { KilnToolOutput } from "./schemas.ts";

/**
 * Mastra's `toModelOutput`: plain text, plus one image part per chart in the shape Mastra's
 * own workspace tools author (`media`), which Mastra converts for the model's AI SDK version.
 */
export function toModelOutput(output: KilnToolOutput): unknown {
  if (!output.images?.length) return { type: "text", value: output.text };
  return {
    type: "content",
    value: [
      { type: "text", text: output.text },
      ...output.images.map((image) => ({ type: "media", data: image.data, mediaType: image.mediaType })),
    ],
  };
}
