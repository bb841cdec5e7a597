/**
 * The five tools' zod input schemas, built from core's input-field descriptions.
 */
import type { Language } from "@kiln/core";
import { INPUT_DESCRIPTIONS, languageInputDescription } from "@kiln/core/tools";
import { z } from "zod";

const LANGUAGE = z.enum(["python", "javascript", "typescript"]);

export function schemas(defaultLanguage: Language) {
  return {
    run_code: z.object({
      code: z.string().describe(INPUT_DESCRIPTIONS.code),
      language: LANGUAGE.optional().describe(languageInputDescription(defaultLanguage)),
    }),
    run_command: z.object({
      command: z.string().describe(INPUT_DESCRIPTIONS.command),
    }),
    read_file: z.object({
      path: z.string().describe(INPUT_DESCRIPTIONS.path),
    }),
    write_file: z.object({
      path: z.string().describe(INPUT_DESCRIPTIONS.path),
      content: z.string().describe(INPUT_DESCRIPTIONS.content),
    }),
    list_files: z.object({
      path: z.string().optional().describe(INPUT_DESCRIPTIONS.directory),
    }),
  };
}
