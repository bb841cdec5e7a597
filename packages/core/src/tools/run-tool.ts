/**
 * The five tools' behaviour, once for every wrapper (LangChain, the AI SDK, Mastra, MCP, the
 * CLI): which sandbox call each tool makes, how a path resolves, how read_file reads (bounded
 * bytes, images told from text by their content), and which errors the model gets back as text.
 * A wrapper only translates `{ ok, text, images }` into its framework's shape.
 */
import { posix } from "node:path";
import type { UseInfo } from "../conversations/conversation-sandboxes.ts";
import { RESTARTED_NOTES } from "../conversations/conversation-sandboxes.ts";
import { WORKDIR } from "../defaults.ts";
import { InvalidArgumentError, KilnError } from "../errors.ts";
import type { Sandbox } from "../sandbox/sandbox.ts";
import type { Language } from "../types.ts";
import {
  formatCommand,
  formatExecution,
  formatListing,
  formatSize,
  type ImageMediaType,
  type ToolImage,
} from "./format.ts";
import {
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  MAX_IMAGE_BYTES,
  MAX_LIST_ENTRIES,
  READ_BYTES_PER_CHAR,
  SNIFF_BYTES,
} from "./tool-defaults.ts";

export type ToolName = "run_code" | "run_command" | "read_file" | "write_file" | "list_files";

/** The tools in the order every wrapper lists them. */
export const TOOL_NAMES: readonly ToolName[] = ["run_code", "run_command", "read_file", "write_file", "list_files"];

/** What the model sends to each tool. */
export interface ToolInputs {
  run_code: { code: string; language?: Language | undefined };
  run_command: { command: string };
  read_file: { path: string };
  write_file: { path: string; content: string };
  list_files: { path?: string | undefined };
}

/** The limits a tool set runs with (see toolLimits for the defaults). */
export interface ToolLimits {
  /** Time limit of one run_code or run_command call. @default 60_000 */
  timeoutMs: number;
  /** Characters kept per stream (stdout, stderr, traceback, file text). @default 12_000 */
  maxOutputChars: number;
  /** Largest image read_file attaches. @default 5_000_000 */
  maxImageBytes?: number;
}

/** What every tool returns: text for the model, images to attach, and whether the call did what was asked. */
export interface ToolResult {
  /** False when the code raised, timed out or was killed, the command exited non-zero, or the model's input was wrong. */
  ok: boolean;
  text: string;
  images: ToolImage[];
}

/** The part of a Sandbox the tools use (a local or a remote one). */
export type ToolSandbox = Pick<Sandbox, "exec" | "runCode" | "files">;

export interface RunToolOptions {
  signal?: AbortSignal | undefined;
  /** The conversation's sandbox had to be started or made again: the output starts with a note saying what is gone. */
  restarted?: UseInfo["restarted"];
}

function positive(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
    throw new InvalidArgumentError(field, `must be a positive number; got ${String(value)}`);
  return value;
}

/** The limits of a tool set from its options, defaults filled in; InvalidArgumentError for a bad value. */
export function toolLimits(options: { timeoutMs?: number; maxOutputChars?: number; maxImageBytes?: number } = {}) {
  return {
    timeoutMs: positive("timeoutMs", options.timeoutMs, DEFAULT_TOOL_TIMEOUT_MS),
    maxOutputChars: Math.floor(positive("maxOutputChars", options.maxOutputChars, DEFAULT_MAX_OUTPUT_CHARS)),
    maxImageBytes: positive("maxImageBytes", options.maxImageBytes, MAX_IMAGE_BYTES),
  } satisfies Required<ToolLimits>;
}

/**
 * The absolute sandbox path a tool's path means: relative paths resolve against /workspace and
 * `..` segments are folded, so "../tmp/x" is /tmp/x. Empty or missing means /workspace.
 */
export function resolveToolPath(path: unknown): string {
  if (path === undefined || path === null || (typeof path === "string" && path.trim() === "")) return WORKDIR;
  if (typeof path !== "string") throw new InvalidArgumentError("path", "must be a string");
  return posix.resolve(WORKDIR, path);
}

/** Fields whose values the model wrote: a bad one is the model's to fix, not a fault. */
const MODEL_FIELDS = /^(path|code|content|language|command(\[\d+\])?)$/;

/**
 * The text a model gets for an error it caused and can fix (a missing file, a path outside the
 * rules, a directory where a file was expected); undefined for anything else, an infrastructure
 * fault the caller rethrows.
 */
export function toolErrorText(err: unknown): string | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  const modelsArgument = err.code === "INVALID_ARGUMENT" && MODEL_FIELDS.test((err as { field?: string }).field ?? "");
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
  return `Error: ${err.message}.${hint}`;
}

const IMAGE_SIGNATURES: { mediaType: ImageMediaType; test: (b: Uint8Array) => boolean }[] = [
  { mediaType: "image/png", test: (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 },
  { mediaType: "image/jpeg", test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { mediaType: "image/gif", test: (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38 },
  {
    // RIFF....WEBP
    mediaType: "image/webp",
    test: (b) =>
      b[0] === 0x52 &&
      b[1] === 0x49 &&
      b[2] === 0x46 &&
      b[3] === 0x46 &&
      b[8] === 0x57 &&
      b[9] === 0x45 &&
      b[10] === 0x42 &&
      b[11] === 0x50,
  },
];

/** The media type of an image a model can view, from the file's first bytes (never its name). */
export function sniffImage(bytes: Uint8Array): ImageMediaType | undefined {
  return IMAGE_SIGNATURES.find((s) => s.test(bytes))?.mediaType;
}

// A sample cut from a longer file may end inside a multi-byte character: drop that last character.
function trimPartial(bytes: Uint8Array): Uint8Array {
  const end = bytes.length;
  for (let i = 1; i <= 3 && end - i >= 0; i++) {
    const byte = bytes[end - i] as number;
    if ((byte & 0xc0) === 0xc0) return bytes.subarray(0, end - i);
    if ((byte & 0x80) === 0) break;
  }
  return bytes;
}

/**
 * Text, or undefined when the bytes are not text (a NUL or invalid UTF-8 in the first 8 KiB).
 * `cut`: the bytes are the start of a longer file, so a character split at the end is dropped.
 */
export function decodeText(bytes: Uint8Array, cut = false): string | undefined {
  const whole = cut ? trimPartial(bytes) : bytes;
  const sample = whole.subarray(0, SNIFF_BYTES);
  if (sample.includes(0)) return undefined;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(sample.length < whole.length ? trimPartial(sample) : sample);
  } catch {
    return undefined;
  }
  return new TextDecoder("utf-8").decode(whole);
}

/** Keeps the start (files are read top to bottom), with a note saying how to read on. */
export function cutHead(text: string, max: number, hint: string): string {
  if (text.length <= max) return text;
  // Never split a surrogate pair: the halves would decode as replacement characters.
  const code = text.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return `${text.slice(0, end)}\n[... cut: showing the first ${end} of ${text.length} characters; ${hint}]`;
}

/** At most `maxBytes` from the start of a file; never more crosses from the sandbox. */
async function readHead(sandbox: ToolSandbox, path: string, maxBytes: number): Promise<Uint8Array> {
  const bytes = await sandbox.files.read(path, { maxBytes, truncate: true });
  return bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes;
}

const READ_ON =
  "read further with run_command (e.g. `sed -n '200,400p' FILE`, `tail`, `grep`) or load it with run_code";

/** read_file: images as images (by content), text cut to size, other files described. */
export async function readFileForModel(
  sandbox: ToolSandbox,
  path: string,
  limits: ToolLimits,
): Promise<Omit<ToolResult, "ok"> & { ok: boolean }> {
  const full = resolveToolPath(path);
  const entry = await sandbox.files.stat(full);
  if (entry.type === "directory") {
    return { ok: false, text: `${full} is a directory: use list_files to see what is in it.`, images: [] };
  }
  if (entry.type === "other") {
    return {
      ok: false,
      text: `${full} is not a regular file (a device, socket or pipe): it cannot be read.`,
      images: [],
    };
  }
  const maxImageBytes = limits.maxImageBytes ?? MAX_IMAGE_BYTES;
  const head = await readHead(sandbox, full, Math.max(limits.maxOutputChars * READ_BYTES_PER_CHAR, SNIFF_BYTES));
  const cut = head.length < entry.size;
  const mediaType = sniffImage(head);
  if (mediaType) {
    const bytes = cut && entry.size <= maxImageBytes ? await readHead(sandbox, full, maxImageBytes + 1) : head;
    if (entry.size > maxImageBytes || bytes.length > maxImageBytes) {
      return {
        ok: true,
        text: `${full} is a ${mediaType} image of ${formatSize(entry.size)}, too large to attach (limit ${formatSize(maxImageBytes)}): make a smaller copy with run_code first.`,
        images: [],
      };
    }
    return {
      ok: true,
      text: `${full} (${mediaType}, ${formatSize(bytes.length)}) [image 1, attached]`,
      images: [{ mediaType, data: Buffer.from(bytes).toString("base64") }],
    };
  }
  const text = decodeText(head, cut);
  if (text === undefined) {
    return {
      ok: true,
      text: `${full} is a binary file of ${formatSize(entry.size)}, not shown as text: inspect it with run_code, or run_command (e.g. \`xxd ${full} | head\`).`,
      images: [],
    };
  }
  if (text === "" && !cut) return { ok: true, text: `${full} is empty.`, images: [] };
  let shown = cutHead(text, limits.maxOutputChars, READ_ON);
  if (cut && shown === text)
    shown = `${text}\n[... cut: showing the first ${head.length} of ${entry.size} bytes; ${READ_ON}]`;
  return { ok: true, text: shown, images: [] };
}

function text(ok: boolean, body: string): ToolResult {
  return { ok, text: body, images: [] };
}

async function dispatch(
  name: ToolName,
  input: Record<string, unknown>,
  sandbox: ToolSandbox,
  limits: ToolLimits,
  signal: AbortSignal | undefined,
): Promise<ToolResult> {
  const timeoutMs = limits.timeoutMs;
  switch (name) {
    case "run_code": {
      const language = input.language as Language | undefined;
      const execution = await sandbox.runCode(input.code as string, {
        ...(language === undefined ? {} : { language }),
        timeoutMs,
        ...(signal ? { signal } : {}),
      });
      const { text: body, images } = formatExecution(execution, limits);
      return { ok: execution.status === "ok" && !execution.error, text: body, images };
    }
    case "run_command": {
      const result = await sandbox.exec(input.command as string, { timeoutMs, ...(signal ? { signal } : {}) });
      return text(result.status === "ok", formatCommand(result, limits));
    }
    case "read_file":
      return readFileForModel(sandbox, input.path as string, limits);
    case "write_file": {
      const full = resolveToolPath(input.path);
      const content = input.content;
      if (typeof content !== "string") throw new InvalidArgumentError("content", "must be a string");
      await sandbox.files.write(full, content);
      return text(true, `Wrote ${Buffer.byteLength(content)} bytes to ${full}.`);
    }
    case "list_files": {
      const full = resolveToolPath(input.path);
      return text(true, formatListing(full, await sandbox.files.list(full), MAX_LIST_ENTRIES));
    }
    default:
      throw new InvalidArgumentError(
        "name",
        `no tool named ${JSON.stringify(name)}; the tools are ${TOOL_NAMES.join(", ")}`,
      );
  }
}

/**
 * Runs one tool call in `sandbox`. The user's code failing, and mistakes the model can fix, come
 * back as text (`ok: false`); infrastructure faults (engine down, sandbox gone) are thrown.
 */
export async function runTool<N extends ToolName>(
  name: N,
  input: ToolInputs[N],
  sandbox: ToolSandbox,
  limits: ToolLimits,
  options: RunToolOptions = {},
): Promise<ToolResult> {
  let result: ToolResult;
  try {
    if (typeof input !== "object" || input === null) throw new InvalidArgumentError("input", "must be an object");
    result = await dispatch(name, input as unknown as Record<string, unknown>, sandbox, limits, options.signal);
  } catch (err) {
    const message = toolErrorText(err);
    if (message === undefined) throw err;
    result = text(false, message);
  }
  return withRestartNote(result, options.restarted);
}

/** Puts the note about a restarted sandbox before a tool's output (the same words everywhere). */
export function withRestartNote<T extends { text: string }>(output: T, restarted: UseInfo["restarted"]): T {
  return restarted ? { ...output, text: `${RESTARTED_NOTES[restarted]}\n\n${output.text}` } : output;
}
