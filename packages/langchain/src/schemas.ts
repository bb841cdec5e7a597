/**
 * The five tools as the model sees them: core's descriptions (with the limits this tool set was
 * built with) and zod input schemas built from core's input-field descriptions.
 */
import { type Limits as CoreLimits, describeTools, INPUT_DESCRIPTIONS, type Language } from "@kiln/core";
import { z } from "zod";

export interface Limits extends CoreLimits {
  /** The language run_code uses when the model gives none (the sandbox's own). */
  defaultLanguage: Language;
}

const LANGUAGE_NAMES = { python: "Python", javascript: "JavaScript", typescript: "TypeScript" } as const;

export function descriptions(limits: Limits) {
  const described = describeTools(limits);
  if (limits.defaultLanguage === "python") return described;
  // Core's text assumes Python as the default; a sandbox of another language runs that instead.
  const note = `In this sandbox code without a language runs as ${LANGUAGE_NAMES[limits.defaultLanguage]}.`;
  return { ...described, run_code: `${described.run_code} ${note}` };
}

const LANGUAGE = z.enum(["python", "javascript", "typescript"]);

export function schemas(limits: Limits) {
  const language =
    limits.defaultLanguage === "python"
      ? INPUT_DESCRIPTIONS.language
      : `The language of the code. Default "${limits.defaultLanguage}"`;
  return {
    run_code: z.object({
      code: z.string().describe(INPUT_DESCRIPTIONS.code),
      language: LANGUAGE.optional().describe(language),
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
