/**
 * Turns Kiln results into what a model reads: compact text with each section cut to a size,
 * images kept apart so they reach the model as image parts. Pure functions, no I/O.
 */
import type { CommandResult, Execution, FileEntry, Result, RunStatus } from "@kiln/core";
import { KilnError } from "@kiln/core";
import type { KilnImage, KilnToolOutput } from "./schemas.ts";

export interface FormatLimits {
  maxOutputChars: number;
  timeoutMs: number;
}

const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

/** Keeps the start and the end (where errors and totals usually are), with a note in between. */
export function cutMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = safeEnd(text, Math.ceil(max / 2));
  const tail = safeStart(text, text.length - Math.floor(max / 2));
  return `${text.slice(0, head)}\n[... ${tail - head} characters cut ...]\n${text.slice(tail)}`;
}

/** Keeps the start, for files read top to bottom. */
export function cutHead(text: string, max: number, hint: string): string {
  if (text.length <= max) return text;
  const end = safeEnd(text, max);
  return `${text.slice(0, end)}\n[... cut: showing the first ${end} of ${text.length} characters; ${hint}]`;
}

// Never split a surrogate pair: the halves would decode as replacement characters.
function safeEnd(text: string, index: number): number {
  const code = text.charCodeAt(index - 1);
  return code >= 0xd800 && code <= 0xdbff ? index - 1 : index;
}
function safeStart(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code >= 0xdc00 && code <= 0xdfff ? index + 1 : index;
}

function section(label: string, body: string, max: number): string | undefined {
  const clean = body.replace(ANSI, "").replace(/\s+$/, "");
  return clean === "" ? undefined : `${label}:\n${cutMiddle(clean, max)}`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function statusNote(status: RunStatus, limits: FormatLimits, what: "code" | "command"): string | undefined {
  switch (status) {
    case "timeout":
      return `Stopped: the ${what} ran longer than the limit of ${seconds(limits.timeoutMs)}.`;
    case "oom":
      return what === "code"
        ? "Killed: the sandbox ran out of memory. Variables from earlier cells may be gone; use less data at once."
        : "Killed: the sandbox ran out of memory.";
    case "killed":
      return `Killed before the ${what} finished (cancelled, or the sandbox stopped).`;
    default:
      return undefined;
  }
}

const TRUNCATED_NOTE =
  "Note: the output was larger than the sandbox collects (1 MiB per stream); only its start was kept.";

function imageOf(result: Result): KilnImage | undefined {
  if (result.png) return { mediaType: "image/png", data: result.png };
  if (result.jpeg) return { mediaType: "image/jpeg", data: result.jpeg };
  return undefined;
}

function textOf(result: Result): string | undefined {
  if (result.text !== undefined) return result.text;
  if (result.markdown !== undefined) return result.markdown;
  if (result.json !== undefined) return JSON.stringify(result.json, null, 2);
  if (result.html !== undefined) return result.html;
  if (result.svg !== undefined) {
    return `[SVG output, ${result.svg.length} characters, not shown: save the figure as PNG to see it]`;
  }
  return undefined;
}

export function formatExecution(execution: Execution, limits: FormatLimits): KilnToolOutput {
  const max = limits.maxOutputChars;
  const parts: (string | undefined)[] = [
    section("stdout", execution.stdout, max),
    section("stderr", execution.stderr, max),
  ];
  const images: KilnImage[] = [];
  for (const result of execution.results) {
    const image = imageOf(result);
    if (image) {
      images.push(image);
      parts.push(`[image ${images.length}: ${image.mediaType}, attached]`);
      continue;
    }
    const text = textOf(result);
    if (text !== undefined) parts.push(section(result.isMainResult ? "Out" : "Display", text, max));
  }
  const error = execution.error;
  if (error) {
    const traceback = error.traceback.replace(ANSI, "").trim();
    parts.push(`Error: ${error.name}: ${error.value}`);
    // Python's traceback names itself; other languages' stacks get a label.
    if (traceback.startsWith("Traceback")) parts.push(cutMiddle(traceback, max));
    else parts.push(section("Traceback", traceback, max));
  }
  parts.push(statusNote(execution.status, limits, "code"));
  if (execution.truncated) parts.push(TRUNCATED_NOTE);
  const text = parts.filter((p) => p !== undefined).join("\n\n") || "(no output)";
  return { ok: execution.status === "ok" && !error, text, ...(images.length ? { images } : {}) };
}

export function formatCommand(result: CommandResult, limits: FormatLimits): KilnToolOutput {
  const max = limits.maxOutputChars;
  const parts = [
    `exit code ${result.exitCode}`,
    section("stdout", result.stdout, max) ?? "stdout: (empty)",
    section("stderr", result.stderr, max),
    statusNote(result.status, limits, "command"),
    result.truncated ? TRUNCATED_NOTE : undefined,
  ];
  return { ok: result.status === "ok", text: parts.filter((p) => p !== undefined).join("\n\n") };
}

const IMAGE_SIGNATURES: { mediaType: KilnImage["mediaType"]; test: (b: Uint8Array) => boolean }[] = [
  { mediaType: "image/png", test: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 },
  { mediaType: "image/jpeg", test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { mediaType: "image/gif", test: (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 },
  {
    mediaType: "image/webp",
    test: (b) => b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45,
  },
];

/** The media type of an image the model can view, from the file's first bytes. */
export function sniffImage(bytes: Uint8Array): KilnImage["mediaType"] | undefined {
  return IMAGE_SIGNATURES.find((s) => s.test(bytes))?.mediaType;
}

/** Text, or undefined when the bytes are not text (a NUL, or invalid UTF-8, near the start). */
export function decodeText(bytes: Uint8Array): string | undefined {
  const sample = bytes.subarray(0, 8192);
  if (sample.includes(0)) return undefined;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(sample.length < bytes.length ? trimPartial(sample) : sample);
  } catch {
    return undefined;
  }
  return new TextDecoder("utf-8").decode(bytes);
}

// A sample cut from a longer file may end inside a multi-byte character: drop that last character.
function trimPartial(bytes: Uint8Array): Uint8Array {
  const end = bytes.length;
  for (let i = 1; i <= 3 && end - i >= 0; i++) {
    const byte = bytes[end - i] as number;
    if ((byte & 0xc0) === 0xc0) return bytes.subarray(0, end - i);
    if ((byte & 0x80) === 0) break;
  }
  return bytes.subarray(0, end);
}

export function formatFile(
  path: string,
  bytes: Uint8Array,
  limits: FormatLimits,
  options: { totalBytes?: number; maxImageBytes: number },
): KilnToolOutput {
  const total = options.totalBytes ?? bytes.length;
  const mediaType = sniffImage(bytes);
  if (mediaType) {
    if (total > options.maxImageBytes || bytes.length < total) {
      return {
        ok: true,
        text: `${path} is a ${mediaType} image of ${total} bytes, too large to attach (limit ${options.maxImageBytes} bytes); make a smaller copy with Python first.`,
      };
    }
    return {
      ok: true,
      text: `${path} (${mediaType}, ${total} bytes) [image 1, attached]`,
      images: [{ mediaType, data: Buffer.from(bytes).toString("base64") }],
    };
  }
  const text = decodeText(bytes);
  if (text === undefined) {
    return {
      ok: true,
      text: `${path} is a binary file of ${total} bytes, not shown as text. Inspect it with run_code, or run_command (e.g. \`xxd ${path} | head\`).`,
    };
  }
  const hint = "read further with run_command (e.g. `sed -n '200,400p' FILE` or `tail`)";
  let shown = cutHead(text, limits.maxOutputChars, hint);
  if (bytes.length < total && shown === text) {
    shown = `${text}\n[... cut: showing the first ${bytes.length} of ${total} bytes; ${hint}]`;
  }
  return { ok: true, text: shown === "" ? `${path} is empty.` : shown };
}

function describeEntry(entry: FileEntry): string {
  if (entry.type === "directory") return `dir   ${entry.name}/`;
  if (entry.type === "symlink") return `link  ${entry.name}`;
  if (entry.type === "other") return `other ${entry.name}`;
  return `file  ${entry.name}  (${entry.size} bytes)`;
}

export function formatListing(path: string, entries: FileEntry[], maxEntries: number): KilnToolOutput {
  if (entries.length === 0) return { ok: true, text: `${path} is empty.` };
  const sorted = [...entries].sort(
    (a, b) => Number(b.type === "directory") - Number(a.type === "directory") || a.name.localeCompare(b.name),
  );
  const lines = sorted.slice(0, maxEntries).map(describeEntry);
  if (sorted.length > maxEntries) {
    lines.push(
      `[... ${sorted.length - maxEntries} more entries not shown; narrow down with run_command (e.g. find, ls | grep)]`,
    );
  }
  return { ok: true, text: `${path} (${entries.length} entries)\n${lines.join("\n")}` };
}

/** Arguments the model wrote (a bad `options.timeoutMs` is the developer's, and throws). */
const MODEL_FIELDS = /^(path|code|content|command(\[\d+\])?)$/;

/**
 * A Kiln error the model caused and can fix (a missing file, a path outside the rules, a
 * directory where a file was expected) as readable text; undefined for anything else, which
 * the caller rethrows as an infrastructure fault.
 */
export function formatModelFault(err: unknown): KilnToolOutput | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  const modelsArgument =
    err.code === "INVALID_ARGUMENT" && MODEL_FIELDS.test((err as KilnError & { field: string }).field);
  if (err.code !== "FILE_NOT_FOUND" && err.code !== "FILE_ERROR" && !modelsArgument) return undefined;
  const errno = (err as { errno?: string }).errno;
  const hint =
    errno === "EISDIR"
      ? " It is a directory: use list_files."
      : errno === "ENOTDIR"
        ? " A part of the path is a file, not a directory."
        : errno === "EACCES" || errno === "EPERM"
          ? " The sandbox user may not write there: use /workspace or /tmp."
          : "";
  return { ok: false, text: `Error: ${err.message}.${hint}` };
}

/**
 * Mastra's `toModelOutput`: plain text, plus one image part per chart in the shape Mastra's
 * own workspace tools author (`media`), which Mastra converts for the model's AI SDK version.
 */
export function toModelOutput(output: KilnToolOutput): unknown {
  if (!output.images?.length) return { type: "text", value: output.text };
  return {
    type: "content",
    value: [
      { type: "text", text: output.text },
      ...output.images.map((image) => ({ type: "media", data: image.data, mediaType: image.mediaType })),
    ],
  };
}
