/**
 * What the model reads about the five tools. One paragraph on the sandbox, shared; one line on
 * each tool. Limits are filled in from the options so the text never disagrees with the code.
 */

export interface DescribedLimits {
  timeoutMs: number;
  maxOutputChars: number;
  /** The sandboxes' network, when the tools create them; undefined for a sandbox passed in. */
  network?: "none" | "egress" | { allow: string[] } | undefined;
  /** When the tools stop idle sandboxes; undefined for a sandbox passed in. */
  idleTimeoutMs?: number | undefined;
}

function networkSentence(network: DescribedLimits["network"]): string {
  if (network === undefined)
    return "Network access is normally off: do not rely on downloading or installing anything.";
  if (network === "none")
    return "There is no network access, so nothing can be downloaded or installed from the internet.";
  return "It has outbound network access.";
}

function minutes(ms: number): string {
  const value = Math.round(ms / 6_000) / 10;
  return value >= 1 ? `${value} minute${value === 1 ? "" : "s"}` : seconds(ms);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

export function sandboxSummary(limits: DescribedLimits): string {
  return [
    "Runs in an isolated Linux container (a sandbox) that belongs to this conversation: Python 3 with numpy, pandas and matplotlib, Node.js 24, and common shell tools.",
    networkSentence(limits.network),
    "Files live in /workspace, the working directory; relative paths resolve there and files persist between calls.",
    `Each call may run for ${seconds(limits.timeoutMs)} before it is stopped.`,
    limits.idleTimeoutMs !== undefined && Number.isFinite(limits.idleTimeoutMs)
      ? `After ${minutes(limits.idleTimeoutMs)} without calls the sandbox is paused: files stay, but variables are lost.`
      : undefined,
    `Output longer than ${limits.maxOutputChars} characters per stream is cut in the middle, with a note saying how much was left out.`,
  ]
    .filter((sentence) => sentence !== undefined)
    .join(" ");
}

export function describeTools(
  limits: DescribedLimits,
): Record<"run_code" | "run_command" | "read_file" | "write_file" | "list_files", string> {
  const sandbox = sandboxSummary(limits);
  return {
    run_code: [
      "Run a code cell like a Jupyter notebook and get its stdout, stderr, the value of the last expression, and any charts.",
      "Variables, imports and functions persist between run_code calls of the same language, so build on earlier cells instead of repeating them.",
      "matplotlib figures are returned to you as images automatically (plt.show() is not needed); use pandas for tables and print what you want to read.",
      "An error in the code comes back as its exception name, message and traceback: fix the code and run again.",
      sandbox,
    ].join(" "),
    run_command: [
      "Run a shell command (through sh -c, starting in /workspace) and get its exit code, stdout and stderr.",
      "Use it for ls, grep, head, wc, running scripts, or checking installed tools. Background processes are stopped when the command ends.",
      sandbox,
    ].join(" "),
    read_file: [
      "Read a file from the sandbox as UTF-8 text. PNG, JPEG, GIF and WebP images come back as images you can see.",
      "Large files are cut; read parts of them with run_command (head, tail, sed -n) or pandas.",
      sandbox,
    ].join(" "),
    write_file: [
      "Create or replace a text file in the sandbox with the given content; parent directories are created.",
      "Use it to save data, scripts or results that later run_code or run_command calls use.",
      sandbox,
    ].join(" "),
    list_files: [
      "List a directory in the sandbox: name, type and size of each entry. Defaults to /workspace.",
      sandbox,
    ].join(" "),
  };
}

export const FIELD_DESCRIPTIONS = {
  code: "The code to run. The value of the last line is shown, as in a notebook.",
  language: "python (default), javascript or typescript. Each language keeps its own state.",
  command: "The shell command line, e.g. `ls -la data` or `python3 analyze.py`.",
  path: "A path in the sandbox; relative paths resolve against /workspace.",
  content: "The full text to write; an existing file is replaced.",
  listPath: "The directory to list; defaults to /workspace.",
} as const;
