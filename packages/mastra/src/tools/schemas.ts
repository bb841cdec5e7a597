/**
 * The tools' zod schemas: the five model-facing inputs and the one output shape they share.
 */
import { z } from "zod";
import { FIELD_DESCRIPTIONS } from "./descriptions.ts";

export const runCodeInput = z.object({
  code: z.string().min(1).describe(FIELD_DESCRIPTIONS.code),
  language: z.enum(["python", "javascript", "typescript"]).optional().describe(FIELD_DESCRIPTIONS.language),
});

export const runCommandInput = z.object({
  command: z.string().min(1).describe(FIELD_DESCRIPTIONS.command),
});

export const readFileInput = z.object({
  path: z.string().min(1).describe(FIELD_DESCRIPTIONS.path),
});

export const writeFileInput = z.object({
  path: z.string().min(1).describe(FIELD_DESCRIPTIONS.path),
  content: z.string().describe(FIELD_DESCRIPTIONS.content),
});

export const listFilesInput = z.object({
  path: z.string().optional().describe(FIELD_DESCRIPTIONS.listPath),
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
