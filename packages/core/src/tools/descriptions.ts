/**
 * What the model reads: the five tools' descriptions, and the descriptions of their input
 * fields (each adapter builds its schemas with them). Limits in the text come from the tool
 * set's options, so the model is told the limits that actually apply.
 */
import { WORKDIR } from "../defaults.ts";
import type { Language } from "../types.ts";

export interface Limits {
  timeoutMs: number;
  maxOutputChars: number;
  /** The sandboxes' network when the tool set creates them; unknown (a given sandbox): said vaguely. */
  network?: "none" | "egress" | undefined;
  /** The language run_code uses when the model names none (the sandbox's). @default "python" */
  defaultLanguage?: Language | undefined;
  /**
   * When the tool set stops a conversation's idle sandbox (its variables are then lost); the
   * descriptions say so. undefined: a given sandbox, or one released only on close.
   */
  idleTimeoutMs?: number | undefined;
}

const LANGUAGE_NAMES: Record<Language, string> = {
  python: "Python",
  javascript: "JavaScript",
  typescript: "TypeScript",
};

function minutes(ms: number): string {
  const value = Math.round(ms / 6_000) / 10;
  return value >= 1 ? `${value} minute${value === 1 ? "" : "s"}` : `${Math.round(ms / 100) / 10} s`;
}

/** What the descriptions may promise about the network: only what `sandboxOptions` set explicitly. */
export function declaredNetwork(sandboxOptions: { network?: unknown } | undefined): Limits["network"] {
  const network = sandboxOptions?.network;
  return network === "none" || network === "egress" ? network : undefined;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

const NETWORK: Record<"none" | "egress" | "unknown", string> = {
  none: "it has no network access (installing packages from the internet will fail)",
  egress: "it can reach the internet, but not private networks or cloud metadata",
  unknown: "it has no network access unless it was enabled for you",
};

function sandbox({ timeoutMs, maxOutputChars, network }: Limits): string {
  return (
    `The sandbox is an isolated Linux container with Python 3 (numpy, pandas, matplotlib) and Node.js 24; ` +
    `${NETWORK[network ?? "unknown"]}. Files live in ${WORKDIR} (relative paths resolve ` +
    `there) and stay for the whole conversation. Each call may run for ${seconds(timeoutMs)} at most; stdout, ` +
    `stderr and tracebacks are cut to ${maxOutputChars} characters each, with a note saying so, so print ` +
    `summaries rather than whole datasets.`
  );
}

export function describeTools(
  limits: Limits,
): Record<"run_code" | "run_command" | "read_file" | "write_file" | "list_files", string> {
  const env = sandbox(limits);
  const language = limits.defaultLanguage ?? "python";
  // Core's text assumes Python as the default; a sandbox of another language runs that instead.
  const languageNote =
    language === "python" ? "" : ` In this sandbox code without a language runs as ${LANGUAGE_NAMES[language]}.`;
  const idle =
    limits.idleTimeoutMs !== undefined && limits.idleTimeoutMs > 0 && Number.isFinite(limits.idleTimeoutMs)
      ? ` After ${minutes(limits.idleTimeoutMs)} without calls the sandbox is paused: files stay, but variables are lost.`
      : "";
  const described = {
    run_code:
      `Run Python (default), JavaScript or TypeScript code in a sandbox and get its output. Like a notebook ` +
      `cell: variables, imports and functions persist between run_code calls of the same language, and the ` +
      `value of the last expression is returned. matplotlib charts (plt.show(), or a figure as the last ` +
      `expression) come back to you as images. If the code fails you get the error and traceback as text: ` +
      `fix the code and call again. ${env}`,
    run_command:
      `Run a shell command (sh -c) in a sandbox and get its exit code, stdout and stderr; it starts in ` +
      `${WORKDIR}. Use it for ls, grep, head, pip list, wc and the like; each command runs on its own, so ` +
      `a cd or an export does not carry over to the next call. ${env}`,
    read_file:
      `Read a file from the sandbox. Text files come back as text (cut to ${limits.maxOutputChars} ` +
      `characters, with a note); PNG, JPEG, GIF and WebP images come back as images. Relative paths ` +
      `resolve against ${WORKDIR}.`,
    write_file:
      `Write a text file in the sandbox, replacing it if it exists and creating parent folders. Relative ` +
      `paths resolve against ${WORKDIR}. Use it for data files, scripts and configuration that run_code or ` +
      `run_command then use.`,
    list_files:
      `List the files and folders of one directory in the sandbox (not recursive), with their sizes. ` +
      `Defaults to ${WORKDIR}.`,
  };
  return {
    ...described,
    run_code: described.run_code + languageNote + idle,
    run_command: described.run_command + idle,
  };
}

/** The description of run_code's `language` field for a sandbox whose default is `language`. */
export function languageInputDescription(language: Language = "python"): string {
  return `The language of the code. Default "${language}"`;
}

/** The model-facing descriptions of the tools' input fields. */
export const INPUT_DESCRIPTIONS = {
  code: "The code to run; the value of its last expression is returned",
  language: 'The language of the code. Default "python"',
  command: `A shell command line, run with sh -c in ${WORKDIR}`,
  path: `Path of the file: absolute, or relative to ${WORKDIR} (e.g. "data/sales.csv")`,
  content: "The full text content of the file",
  directory: `Directory to list: absolute, or relative to ${WORKDIR}. Default ${WORKDIR}`,
} as const;
