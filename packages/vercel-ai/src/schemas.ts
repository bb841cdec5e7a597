/**
 * The five tools' input schemas, as zod for the AI SDK. The field descriptions (and the tools'
 * descriptions) are core's, shared by every adapter.
 */
import { INPUT_DESCRIPTIONS } from "@kiln/core/tools";
import { z } from "zod";

const path = () => z.string().min(1).describe(INPUT_DESCRIPTIONS.path);

export const inputSchemas = {
  run_code: z.object({
    code: z.string().min(1).describe(INPUT_DESCRIPTIONS.code),
    language: z.enum(["python", "javascript", "typescript"]).optional().describe(INPUT_DESCRIPTIONS.language),
  }),
  run_command: z.object({
    command: z.string().min(1).describe(INPUT_DESCRIPTIONS.command),
  }),
  read_file: z.object({ path: path() }),
  write_file: z.object({
    path: path(),
    content: z.string().describe(INPUT_DESCRIPTIONS.content),
  }),
  list_files: z.object({
    path: z.string().optional().describe(INPUT_DESCRIPTIONS.directory),
  }),
};

export type RunCodeInput = z.infer<typeof inputSchemas.run_code>;
export type RunCommandInput = z.infer<typeof inputSchemas.run_command>;
export type ReadFileInput = z.infer<typeof inputSchemas.read_file>;
export type WriteFileInput = z.infer<typeof inputSchemas.write_file>;
export type ListFilesInput = z.infer<typeof inputSchemas.list_files>;
