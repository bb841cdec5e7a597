/**
 * Turns Kiln results into compact text for a model: every stream cut to a size with a note,
 * failures of the user's code spelled out (never thrown), images kept apart as images. Every
 * framework adapter presents these the same way; only the wrapping (content blocks, tool
 * result parts) is the framework's.
 */
import type { CommandResult, Execution, FileEntry, Result, RunStatus } from "../types.ts";
import { HEAD_SHARE, MAX_IMAGES_PER_CALL } from "./tool-defaults.ts";

export type ImageMediaType = "image/png" | "image/jpeg" | "image/gif" | "image/webp";

export interface ToolImage {
  mediaType: ImageMediaType;
  /** base64 */
  data: string;
}

/** What run_code and read_file return: text for the model plus images attached as image parts. */
export interface KilnToolOutput {
  text: string;
  images: ToolImage[];
}

export interface FormatOptions {
  maxOutputChars: number;
  timeoutMs: number;
}

// Terminal colour codes mean nothing to a model and cost tokens.
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** Cuts `text` to `max` characters, keeping its start and its end, with a note in the middle. */
export function clip(text: string, max: number): string {
  const clean = text.replace(ANSI, "");
  if (clean.length <= max) return clean;
  const head = Math.floor(max * HEAD_SHARE);
  const tail = max - head;
  const cut = clean.length - head - tail;
  return (
    `${clean.slice(0, head)}\n[... ${cut} characters cut here: output is limited to ${max} characters per ` +
    `stream; write large output to a file and read parts of it ...]\n${clean.slice(clean.length - tail)}`
  );
}

function section(title: string, body: string, max: number): string | undefined {
  return body.trim() === "" ? undefined : `${title}:\n${clip(body.replace(/\n+$/, ""), max)}`;
}

function statusNote(status: RunStatus, timeoutMs: number, truncated: boolean, what: "code" | "command"): string[] {
  const notes: string[] = [];
  if (status === "timeout")
    notes.push(
      what === "code"
        ? `The code was stopped: it ran longer than the ${timeoutMs / 1000} s limit. The interpreter may have been restarted, so variables from earlier calls can be gone.`
        : `The command was killed: it ran longer than the ${timeoutMs / 1000} s limit.`,
    );
  if (status === "oom")
    notes.push(`The ${what} was killed: the sandbox ran out of memory. Work on smaller pieces of the data.`);
  if (status === "killed") notes.push(`The ${what} was cancelled before it finished.`);
  if (truncated) notes.push("The sandbox dropped output beyond its per-stream limit (1 MiB by default).");
  return notes;
}

function resultText(result: Result): string | undefined {
  if (result.text !== undefined) return result.text;
  if (result.markdown !== undefined) return result.markdown;
  if (result.json !== undefined) return JSON.stringify(result.json, null, 2);
  if (result.html !== undefined) return result.html;
  return undefined;
}

/** run_code's output: stdout, stderr, displayed values, the last expression, charts, and any error. */
export function formatExecution(execution: Execution, options: FormatOptions): KilnToolOutput {
  const max = options.maxOutputChars;
  const images: ToolImage[] = [];
  const shown: string[] = [];
  let mainResult: string | undefined;
  let imageCount = 0;
  for (const result of execution.results) {
    const image = result.png
      ? ({ mediaType: "image/png", data: result.png } as const)
      : result.jpeg
        ? ({ mediaType: "image/jpeg", data: result.jpeg } as const)
        : undefined;
    if (image) {
      imageCount += 1;
      if (images.length < MAX_IMAGES_PER_CALL) {
        images.push(image);
        shown.push(`[image ${imageCount}: ${image.mediaType}, attached]`);
      } else {
        shown.push(`[image ${imageCount}: not attached, at most ${MAX_IMAGES_PER_CALL} images per call]`);
      }
      continue; // its text is only a placeholder such as "<Figure size 640x480 with 1 Axes>"
    }
    const text = resultText(result);
    if (text === undefined && result.svg !== undefined) {
      shown.push(`[SVG image of ${result.svg.length} characters, not shown: save the chart as PNG to see it]`);
    } else if (text !== undefined) {
      if (result.isMainResult) mainResult = text;
      else shown.push(text);
    }
  }
  const parts = [
    section("stdout", execution.stdout, max),
    section("stderr", execution.stderr, max),
    section("display", shown.join("\n"), max),
    mainResult === undefined ? undefined : section("result", mainResult, max),
  ];
  if (execution.error) {
    const { name, value, traceback } = execution.error;
    parts.push(`error: ${name}: ${value}`);
    parts.push(section("traceback", traceback, max));
  }
  parts.push(...statusNote(execution.status, options.timeoutMs, execution.truncated, "code"));
  const text = parts.filter((p) => p !== undefined).join("\n\n");
  return { text: text === "" ? "(the code ran and printed nothing)" : text, images };
}

/** run_command's output: the exit code, then stdout and stderr. */
export function formatCommand(result: CommandResult, options: FormatOptions): string {
  const max = options.maxOutputChars;
  return [
    `exit code: ${result.exitCode}`,
    section("stdout", result.stdout, max),
    section("stderr", result.stderr, max),
    ...statusNote(result.status, options.timeoutMs, result.truncated, "command"),
  ]
    .filter((p) => p !== undefined)
    .join("\n\n");
}

/** A byte count as people read it: "512 B", "2.0 KiB", "1.5 MiB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** list_files' output: one entry per line, folders first, with a trailing slash. */
export function formatListing(dir: string, entries: FileEntry[], maxEntries: number): string {
  if (entries.length === 0) return `${dir} is empty.`;
  const sorted = [...entries].sort(
    (a, b) => Number(b.type === "directory") - Number(a.type === "directory") || a.name.localeCompare(b.name),
  );
  const lines = sorted.slice(0, maxEntries).map((e) => {
    if (e.type === "directory") return `${e.name}/`;
    if (e.type === "symlink") return `${e.name} (symlink)`;
    if (e.type === "other") return `${e.name} (special file)`;
    return `${e.name}  ${formatSize(e.size)}`;
  });
  const more = entries.length > maxEntries ? [`[... ${entries.length - maxEntries} more entries not shown]`] : [];
  return [`${dir} (${entries.length} entries):`, ...lines, ...more].join("\n");
}
