/**
 * Core's tool output ({ text, images }) as LangChain ToolMessage content: the text, and images
 * as standard image content blocks. Also read_file's output, for which core has no helper.
 */
import { clip, type KilnToolOutput } from "@kiln/core";
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

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const IMAGE_SIGNATURES: [string, number[]][] = [
  ["image/png", [0x89, 0x50, 0x4e, 0x47]],
  ["image/jpeg", [0xff, 0xd8, 0xff]],
  ["image/gif", [0x47, 0x49, 0x46, 0x38]],
];

function imageType(bytes: Uint8Array): string | undefined {
  for (const [mimeType, signature] of IMAGE_SIGNATURES) {
    if (signature.every((b, i) => bytes[i] === b)) return mimeType;
  }
  // RIFF....WEBP
  if (
    bytes.length >= 12 &&
    String.fromCharCode(...bytes.subarray(0, 4)) === "RIFF" &&
    String.fromCharCode(...bytes.subarray(8, 12)) === "WEBP"
  ) {
    return "image/webp";
  }
  return undefined;
}

/** A file's content for the model: images as images, text cut to size, other binaries described. */
export function formatFile(path: string, bytes: Uint8Array, maxChars: number): ToolContent {
  const mimeType = imageType(bytes);
  if (mimeType) {
    return [
      { type: "text", text: `${path} (${mimeType}, ${formatSize(bytes.length)}), attached below:` },
      { type: "image", mimeType, data: Buffer.from(bytes).toString("base64") },
    ];
  }
  if (bytes.subarray(0, 8192).includes(0)) {
    return `${path} is a binary file (${formatSize(bytes.length)}); inspect it with run_code or run_command instead.`;
  }
  const text = new TextDecoder().decode(bytes);
  return text ? clip(text, maxChars) : `${path} is empty.`;
}
