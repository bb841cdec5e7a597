/**
 * Core's tool output ({ text, images }) as LangChain ToolMessage content: the text, and images
 * as standard image content blocks.
 */
import type { KilnToolOutput } from "@kiln/core/tools";
import type { ContentBlock } from "@langchain/core/messages";

/** A tool result: plain text, or text and image blocks when there is something to see. */
export type ToolContent = string | (ContentBlock.Text | ContentBlock.Multimodal.Image)[];

/** Text alone as a string; with images, a text block followed by one image block per image. */
export function toContent({ text, images }: KilnToolOutput): ToolContent {
  if (images.length === 0) return text;
  return [
    { type: "text", text },
    ...images.map(
      (image): ContentBlock.Multimodal.Image => ({
        type: "image",
        mimeType: image.mediaType,
        data: image.data,
      }),
    ),
  ];
}
