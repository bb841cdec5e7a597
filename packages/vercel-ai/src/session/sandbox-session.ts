/**
 * createSandboxSession(): a Kiln sandbox as the AI SDK's `Experimental_SandboxSession`, the
 * environment that `experimental_sandbox` hands to tools (generateText, streamText, ToolLoopAgent).
 */
import { KilnError, type Sandbox, SandboxFileError } from "@kiln/core";
import type {
  Experimental_SandboxDirectoryEntry as SandboxDirectoryEntry,
  Experimental_SandboxFileStat as SandboxFileStat,
  Experimental_SandboxSession as SandboxSession,
} from "ai";
import {
  DEFAULT_SESSION_RUN_TIMEOUT_MS,
  DEFAULT_SESSION_SPAWN_TIMEOUT_MS,
  DEFAULT_SPAWN_MAX_OUTPUT_BYTES,
  WORKDIR,
} from "../defaults.ts";
import { resolvePath } from "../paths.ts";
import { spawnProcess } from "./spawn.ts";

export interface KilnSandboxSessionOptions {
  /** Time limit of one `run` call; `abortSignal` stops a command earlier. @default 600_000 (10 min) */
  runTimeoutMs?: number;
  /** Time limit of a spawned process. @default 86_400_000 (24 h, core's largest) */
  spawnTimeoutMs?: number;
  /** Output a spawned process may produce per stream; the rest is dropped. @default 16 MiB */
  spawnMaxOutputBytes?: number;
  /** Replaces the default `description` (what the sandbox is, for the model's instructions). */
  description?: string;
}

/** A SandboxSession backed by one Kiln sandbox; `sandbox` is that sandbox. */
export type KilnSandboxSession = SandboxSession & { readonly sandbox: Sandbox };

type RunOptions = Parameters<SandboxSession["run"]>[0];
type SpawnOptions = Parameters<SandboxSession["spawn"]>[0];

const STREAM_CHUNK_BYTES = 64 * 1024;

const isNotFound = (err: unknown) => KilnError.isInstance(err) && err.code === "FILE_NOT_FOUND";

async function orNull<T>(work: () => Promise<T>): Promise<T | null> {
  try {
    return await work();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

function bytesToStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at + STREAM_CHUNK_BYTES));
      at += STREAM_CHUNK_BYTES;
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>, signal?: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks);
}

/** 1-based inclusive lines; the line ending is detected (\r\n, \n, \r); endLine past EOF clamps. */
export function sliceLines(text: string, startLine?: number, endLine?: number): string {
  if (startLine === undefined && endLine === undefined) return text;
  const eol = text.includes("\r\n") ? "\r\n" : text.includes("\n") ? "\n" : text.includes("\r") ? "\r" : "\n";
  const lines = text.split(eol);
  return lines.slice(Math.max(1, startLine ?? 1) - 1, Math.min(lines.length, endLine ?? lines.length)).join(eol);
}

function encodeText(content: string, encoding = "utf-8"): Uint8Array {
  const normalized = encoding.toLowerCase();
  if (normalized === "utf-8" || normalized === "utf8") return new TextEncoder().encode(content);
  if (!Buffer.isEncoding(normalized)) throw new TypeError(`writeTextFile: unsupported encoding ${encoding}`);
  return Buffer.from(content, normalized);
}

function defaultDescription(sandbox: Sandbox): string {
  return [
    `Kiln sandbox ${sandbox.name ?? sandbox.id.slice(0, 12)}: an isolated Debian Linux container.`,
    `Commands run with /bin/sh as an unprivileged user; the working directory and base of relative paths is ${WORKDIR}.`,
    "Installed: Python 3 with numpy, pandas and matplotlib; Node.js 24.",
    'No network access unless the sandbox was created with network "egress".',
    "Files persist until the sandbox is deleted; /tmp is memory-backed.",
  ].join("\n");
}

/**
 * Wraps a Kiln sandbox as an AI SDK `Experimental_SandboxSession`, for the `experimental_sandbox`
 * option of generateText / streamText / ToolLoopAgent. Relative paths (and `workingDirectory`)
 * resolve against /workspace. The session does not own the sandbox: delete it yourself.
 */
export function createSandboxSession(sandbox: Sandbox, options: KilnSandboxSessionOptions = {}): KilnSandboxSession {
  const runTimeoutMs = options.runTimeoutMs ?? DEFAULT_SESSION_RUN_TIMEOUT_MS;
  const spawnTimeoutMs = options.spawnTimeoutMs ?? DEFAULT_SESSION_SPAWN_TIMEOUT_MS;
  const spawnMaxOutputBytes = options.spawnMaxOutputBytes ?? DEFAULT_SPAWN_MAX_OUTPUT_BYTES;
  const files = sandbox.files;

  const readBinaryFile: SandboxSession["readBinaryFile"] = async ({ path, abortSignal }) => {
    abortSignal?.throwIfAborted();
    const bytes = await orNull(() => files.read(resolvePath(path)));
    // A plain Uint8Array view (core hands out a Node Buffer), as the interface's type says.
    return bytes === null ? null : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };

  const writeBinaryFile: SandboxSession["writeBinaryFile"] = async ({ path, content, abortSignal }) => {
    abortSignal?.throwIfAborted();
    await files.write(resolvePath(path), content);
  };

  const run = async ({ command, workingDirectory, env, abortSignal }: RunOptions) => {
    abortSignal?.throwIfAborted();
    const result = await sandbox.exec(command, {
      ...(workingDirectory === undefined ? {} : { cwd: resolvePath(workingDirectory) }),
      ...(env === undefined ? {} : { env }),
      timeoutMs: runTimeoutMs,
      ...(abortSignal === undefined ? {} : { signal: abortSignal }),
    });
    abortSignal?.throwIfAborted();
    let stderr = result.stderr;
    if (result.status === "timeout") stderr += `\n[kiln] the command was killed after ${runTimeoutMs} ms (timeout)\n`;
    if (result.status === "oom") stderr += "\n[kiln] the command was killed: the sandbox ran out of memory\n";
    if (result.truncated) stderr += "\n[kiln] output beyond the per-stream limit (1 MiB) was dropped\n";
    return { exitCode: result.exitCode, stdout: result.stdout, stderr };
  };

  const spawn = ({ command, workingDirectory, env, abortSignal, stdin }: SpawnOptions) =>
    spawnProcess(sandbox, {
      command,
      ...(workingDirectory === undefined ? {} : { cwd: resolvePath(workingDirectory) }),
      ...(env === undefined ? {} : { env }),
      stdin: stdin === true,
      timeoutMs: spawnTimeoutMs,
      maxOutputBytes: spawnMaxOutputBytes,
      ...(abortSignal === undefined ? {} : { abortSignal }),
    });

  return {
    sandbox,
    description: options.description ?? defaultDescription(sandbox),

    readFile: async (o) => {
      const bytes = await readBinaryFile(o);
      return bytes === null ? null : bytesToStream(bytes);
    },
    readBinaryFile,
    readTextFile: async ({ encoding = "utf-8", startLine, endLine, ...o }) => {
      const bytes = await readBinaryFile(o);
      return bytes === null ? null : sliceLines(new TextDecoder(encoding).decode(bytes), startLine, endLine);
    },

    writeFile: async ({ content, ...o }) => writeBinaryFile({ ...o, content: await collect(content, o.abortSignal) }),
    writeBinaryFile,
    writeTextFile: async ({ content, encoding, ...o }) =>
      writeBinaryFile({ ...o, content: encodeText(content, encoding) }),

    stat: async ({ path, abortSignal }): Promise<SandboxFileStat | null> => {
      abortSignal?.throwIfAborted();
      const full = resolvePath(path);
      const entry = await orNull(() => files.stat(full));
      if (entry === null) return null;
      if (entry.type !== "symlink") return { type: entry.type, size: entry.size };
      // Core's stat describes the link itself; the interface follows links.
      const target = await sandbox.exec(["stat", "-L", "--printf", "%F\n%s", full], { signal: abortSignal });
      if (target.exitCode !== 0) {
        if (/No such file/.test(target.stderr)) return null; // a dangling link
        throw new SandboxFileError(full, "EIO", target.stderr.trim() || "stat failed");
      }
      const [kind = "", size = "0"] = target.stdout.split("\n");
      return {
        type: kind === "directory" ? "directory" : kind.startsWith("regular") ? "file" : "other",
        size: Number(size),
      };
    },

    listDirectory: async ({ path, abortSignal }): Promise<SandboxDirectoryEntry[] | null> => {
      abortSignal?.throwIfAborted();
      const entries = await orNull(() => files.list(resolvePath(path)));
      return entries === null ? null : entries.map(({ name, type }) => ({ name, type }));
    },

    deleteFile: async ({ path, abortSignal }) => {
      abortSignal?.throwIfAborted();
      const full = resolvePath(path);
      // Core's stat does not follow links, so a link is removed itself, never its target.
      const entry = await orNull(() => files.stat(full));
      if (entry === null) return false;
      // Core's remove would rmdir an empty directory; the interface rejects every directory.
      if (entry.type === "directory") throw new SandboxFileError(full, "EISDIR", "Is a directory");
      return (await orNull(() => files.remove(full))) !== null;
    },

    spawn: spawn as SandboxSession["spawn"],
    run,
  };
}
