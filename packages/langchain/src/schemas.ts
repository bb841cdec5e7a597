/**
 * The five tools as the model sees them: names, descriptions and input schemas. The descriptions
 * say what the sandbox is and what limits apply, with the numbers this tool set was built with.
 */
import type { Language } from "@kiln/core";
import { z } from "zod";
import { WORKDIR } from "./defaults.ts";

export interface Limits {
  timeoutMs: number;
  maxOutputChars: number;
  /** The language run_code uses when the model gives none. */
  defaultLanguage: Language;
  /** The sandbox's network as far as the tools know ("unknown" for a sandbox passed in). */
  network: "none" | "egress" | "unknown";
}

const NETWORK = {
  none: "no network access, so nothing can be downloaded or installed",
  egress: "outbound network access",
  unknown: "network access that may be off, so do not count on downloading anything",
} as const;

function environment(limits: Limits): string {
  return `The sandbox is an isolated Linux container (Debian) with Python 3 (numpy, pandas, matplotlib) and Node.js 24, running as an unprivileged user, with ${NETWORK[limits.network]}. Files live in ${WORKDIR} (the working directory; relative paths resolve there) and persist across calls in this conversation.`;
}

function limitsText({ timeoutMs, maxOutputChars }: Limits): string {
  return `Each call is stopped after ${timeoutMs / 1000} s. Output over ${maxOutputChars} characters per stream is cut, with a note saying so.`;
}

export function descriptions(limits: Limits) {
  const limitsNote = limitsText(limits);
  const env = environment(limits);
  return {
    run_code: `Run code in a persistent notebook-like interpreter in the sandbox and get its output. ${env} Variables, imports and functions persist between run_code calls (per language), so build on earlier cells instead of repeating work. The value of the last expression is returned, like in Jupyter; print() anything else you need to see. matplotlib figures are returned to you as images automatically (call plt.show() or leave the figure as the last expression). If the code raises, you get the error name, message and traceback: fix the code and run again. ${limitsNote}`,
    run_command: `Run a shell command (sh -c) in the sandbox, starting in ${WORKDIR}, and get its exit code, stdout and stderr. ${env} Use it to inspect files and run programs. Use run_code for Python or JavaScript whose state should persist. Each command is a separate process: cd and exported variables do not carry over. ${limitsNote}`,
    read_file: `Read a file from the sandbox. Text files are returned as text (cut to ${limits.maxOutputChars} characters, with a note); PNG, JPEG, GIF and WebP images are returned as images you can look at. Relative paths resolve against ${WORKDIR}.`,
    write_file: `Write a text file in the sandbox, creating parent directories and replacing any existing file. Relative paths resolve against ${WORKDIR}. Use it to provide data or scripts, then use run_code or run_command on them.`,
    list_files: `List a directory in the sandbox: subdirectories end in "/", files show their size. Defaults to ${WORKDIR}.`,
  } as const;
}

const LANGUAGE = z.enum(["python", "javascript", "typescript"]);

export function schemas(limits: Limits) {
  return {
    run_code: z.object({
      code: z.string().describe("The code to run, as one cell."),
      language: LANGUAGE.optional().describe(`The language of the code. Defaults to "${limits.defaultLanguage}".`),
    }),
    run_command: z.object({
      command: z.string().describe('The shell command line, e.g. "ls -la data && wc -l data/*.csv".'),
    }),
    read_file: z.object({
      path: z.string().describe(`Path of the file, absolute or relative to ${WORKDIR}.`),
    }),
    write_file: z.object({
      path: z.string().describe(`Path of the file, absolute or relative to ${WORKDIR}.`),
      content: z.string().describe("The full text content of the file."),
    }),
    list_files: z.object({
      path: z
        .string()
        .optional()
        .describe(`Directory to list, absolute or relative to ${WORKDIR}. Defaults to ${WORKDIR}.`),
    }),
  };
}
