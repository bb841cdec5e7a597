/**
 * The AI SDK's form of a tool's output. The text and images themselves are core's formatting
 * (formatExecution, formatCommand, formatListing); only the wrapping into tool result parts is ours.
 */
import type { KilnToolOutput } from "@kiln/core/tools";
import type { ToolResultPart } from "ai";

export type ToolResultOutput = ToolResultPart["output"];

/** The model-facing form of a tool's output: text, plus image parts when there are images. */
export function toModelOutput(output: KilnToolOutput | string): ToolResultOutput {
  if (typeof output === "string") return { type: "text", value: output };
  if (output.images.length === 0) return { type: "text", value: output.text };
  return {
    type: "content",
    value: [
      { type: "text", text: output.text },
      ...output.images.map((image) => ({
        type: "file" as const,
        mediaType: image.mediaType,
        data: { type: "data" as const, data: image.data },
      })),
    ],
  };
}
