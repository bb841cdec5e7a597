/**
 * Mastra's side of what a model reads: @kiln/core formats results as `{ text, images }`; this
 * file wraps them in the tools' `{ ok, text, images? }` output, reads files for read_file, turns
 * mistakes the model can fix into text, and hands images to Mastra as media parts (toModelOutput).
 * Pure functions, no I/O.
 */
import type { CommandResult, Execution, FileEntry, FormatOptions, ToolImage } from "@kiln/core";
import { formatCommand, formatExecution, formatListing, KilnError } from "@kiln/core";
import type { KilnImage, KilnToolOutput } from "./schemas.ts";

function withImages(ok: boolean, text: string, images: ToolImage[]): KilnToolOutput {
  return { ok, text, ...(images.length ? { images } : {}) };
}

/** run_code's output; `ok` is false when the code raised, timed out or was killed. */
export function executionOutput(execution: Execution, limits: FormatOptions): KilnToolOutput {
  const { text, images } = formatExecution(execution, limits);
  return withImages(execution.status === "ok" && !execution.error, text, images);
}

/** run_command's output; `ok` is false when the command failed (non-zero exit), timed out or was killed. */
export function commandOutput(result: CommandResult, limits: FormatOptions): KilnToolOutput {
  return { ok: result.status === "ok", text: formatCommand(result, limits) };
}

/** list_files' output. */
export function listingOutput(path: string, entries: FileEntry[], maxEntries: number): KilnToolOutput {
  return { ok: true, text: formatListing(path, entries, maxEntries) };
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
  limits: FormatOptions,
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
