/**
 * The tools' zod schemas: the five model-facing inputs and the one output shape they share.
 */
import { INPUT_DESCRIPTIONS } from "@kiln/core/tools";
import { z } from "zod";

export const runCodeInput = z.object({
  code: z.string().min(1).describe(INPUT_DESCRIPTIONS.code),
  language: z.enum(["python", "javascript", "typescript"]).optional().describe(INPUT_DESCRIPTIONS.language),
});

export const runCommandInput = z.object({
  command: z.string().min(1).describe(INPUT_DESCRIPTIONS.command),
});

export const readFileInput = z.object({
  path: z.string().min(1).describe(INPUT_DESCRIPTIONS.path),
});

export const writeFileInput = z.object({
  path: z.string().min(1).describe(INPUT_DESCRIPTIONS.path),
  content: z.string().describe(INPUT_DESCRIPTIONS.content),
});

export const listFilesInput = z.object({
  path: z.string().optional().describe(INPUT_DESCRIPTIONS.directory),
});

export const imageSchema = z.object({
  mediaType: z.enum(["image/png", "image/jpeg", "image/gif", "image/webp"]),
  /** base64 */
  data: z.string(),
});

/**
 * What every tool returns. `text` is what the model reads; `images` reach it as image parts
 * (see toModelOutput); `ok` is false when the code, command or file operation failed, for UIs.
 */
export const kilnToolOutput = z.object({
  ok: z.boolean(),
  text: z.string(),
  images: z.array(imageSchema).optional(),
});

export type KilnImage = z.infer<typeof imageSchema>;
export type KilnToolOutput = z.infer<typeof kilnToolOutput>;
