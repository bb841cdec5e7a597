/**
 * Turns Kiln results into what the model reads: compact text, each stream cut to a size with a
 * note, and images as LangChain standard image content blocks.
 */
import type { CommandResult, Execution, FileEntry, Result } from "@kiln/core";
import type { ContentBlock } from "@langchain/core/messages";
import { MAX_IMAGES_PER_RESULT, MAX_LIST_ENTRIES } from "./defaults.ts";

/** A tool result: plain text, or text and image blocks when there is something to see. */
export type ToolContent = string | (ContentBlock.Text | ContentBlock.Multimodal.Image)[];

/**
 * Keeps the start and the end of a long text (the end of a log or a traceback is where the
 * answer usually is) and says how much was cut in between.
 */
export function cut(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const head = Math.ceil(maxChars * 0.6);
  const tail = maxChars - head;
  const omitted = text.length - head - tail;
  return `${text.slice(0, head)}\n[... ${omitted} characters cut: output over ${maxChars} characters; write it to a file and read parts of it if you need them ...]\n${text.slice(text.length - tail)}`;
}

function section(label: string, text: string, maxChars: number): string | undefined {
  return text ? `${label}:\n${cut(text.replace(/\n$/, ""), maxChars)}` : undefined;
}

/** What happened when the run did not end normally, in words a model can act on. */
function statusNote(status: CommandResult["status"], timeoutMs: number): string | undefined {
  switch (status) {
    case "timeout":
      return `Timed out after ${timeoutMs / 1000} s and was stopped. Make it faster, work on less data, or split it into steps.`;
    case "oom":
      return "Ran out of memory and was killed. Use less memory (smaller data, chunks, fewer copies).";
    case "killed":
      return "Was killed before it finished.";
    default:
      return undefined;
  }
}

const CUT_BY_SANDBOX = "(the sandbox also cut this output at its own limit)";

function textOf(result: Result, maxChars: number): string | undefined {
  const text =
    result.text ??
    result.markdown ??
    (result.json === undefined ? undefined : JSON.stringify(result.json, null, 2)) ??
    result.html ??
    (result.svg === undefined ? undefined : "[an SVG image; save it to a file to keep it]");
  return text === undefined ? undefined : cut(text, maxChars);
}

/** A run_code result: stdout, stderr, displayed values, the error with its traceback, and charts as images. */
export function formatExecution(execution: Execution, options: { timeoutMs: number; maxChars: number }): ToolContent {
  const { maxChars } = options;
  const parts: (string | undefined)[] = [];
  const images: ContentBlock.Multimodal.Image[] = [];
  let skippedImages = 0;

  parts.push(section("stdout", execution.stdout, maxChars), section("stderr", execution.stderr, maxChars));
  for (const result of execution.results) {
    const image = result.png
      ? { data: result.png, mimeType: "image/png" }
      : result.jpeg
        ? { data: result.jpeg, mimeType: "image/jpeg" }
        : undefined;
    const label = result.isMainResult ? "result" : "display";
    if (image) {
      if (images.length < MAX_IMAGES_PER_RESULT) {
        images.push({ type: "image", ...image });
        parts.push(`${label}: [image ${images.length} (${image.mimeType}), attached below]`);
      } else {
        skippedImages++;
      }
      continue;
    }
    const text = textOf(result, maxChars);
    if (text !== undefined) parts.push(`${label}:\n${text}`);
  }
  if (skippedImages > 0) {
    parts.push(
      `[${skippedImages} more image(s) not shown: at most ${MAX_IMAGES_PER_RESULT} per call; save figures to files]`,
    );
  }
  if (execution.error) {
    const { name, value, traceback } = execution.error;
    parts.push(`error: ${name}: ${value}`, section("traceback", traceback, maxChars));
  }
  parts.push(statusNote(execution.status, options.timeoutMs));
  if (execution.truncated) parts.push(CUT_BY_SANDBOX);

  const present = parts.filter((p): p is string => p !== undefined);
  const text =
    present.length > 0
      ? present.join("\n\n")
      : "[ran without output: print() a value or end the cell with an expression to see it]";
  if (images.length === 0) return text;
  return [{ type: "text", text }, ...images];
}

/** A run_command result: the exit code first, then each stream. */
export function formatCommand(result: CommandResult, options: { timeoutMs: number; maxChars: number }): string {
  const { maxChars } = options;
  const parts = [
    `exit code: ${result.exitCode}`,
    section("stdout", result.stdout, maxChars),
    section("stderr", result.stderr, maxChars),
    statusNote(result.status, options.timeoutMs),
    result.truncated ? CUT_BY_SANDBOX : undefined,
  ];
  if (!result.stdout && !result.stderr) parts.splice(1, 0, "[no output]");
  return parts.filter((p): p is string => p !== undefined).join("\n");
}

/** A directory listing, one entry a line: directories end in "/", files show their size. */
export function formatListing(dir: string, entries: FileEntry[]): string {
  if (entries.length === 0) return `${dir} is empty.`;
  const sorted = [...entries].sort((a, b) => a.name.localeCompare(b.name));
  const shown = sorted.slice(0, MAX_LIST_ENTRIES).map((e) => {
    if (e.type === "directory") return `${e.name}/`;
    if (e.type === "symlink") return `${e.name} (symlink)`;
    return `${e.name} (${formatSize(e.size)})`;
  });
  const more = sorted.length - shown.length;
  return [
    `${dir} (${entries.length} entries):`,
    ...shown,
    ...(more > 0 ? [`[... ${more} more entries not shown]`] : []),
  ].join("\n");
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
  return text ? cut(text, maxChars) : `${path} is empty.`;
}
