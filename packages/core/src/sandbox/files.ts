/**
 * sandbox.files: file operations through the agent, as the sandbox user. Content moves in
 * chunks (large files stream, never buffered whole on either side); paths are validated here.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import type { AgentConnection } from "../agent/connection.ts";
import type { Frame } from "../agent/frames.ts";
import {
  DEFAULT_MAX_DOWNLOAD_BYTES,
  DEFAULT_MAX_READ_BYTES,
  FILE_CHUNK_BYTES,
  MAX_READ_BYTES_LIMIT,
} from "../defaults.ts";
import { FileNotFoundError, InvalidArgumentError, SandboxFileError } from "../errors.ts";
import type { FileEntry } from "../types.ts";
import { describe, optionalBoolean, optionalNumber, optionalObject, requireString } from "../validate.ts";
import { resolveSandboxPath } from "./paths.ts";

export interface SandboxFiles {
  /** Creates parent directories; replaces the file atomically. */
  write(path: string, content: string | Uint8Array): Promise<void>;
  /**
   * FileNotFoundError when absent. At most `maxBytes` (default DEFAULT_MAX_READ_BYTES, 64 MiB):
   * a bigger file is SandboxFileError (code FILE_ERROR, errno EFBIG) naming its size and the
   * limit, or with `truncate: true` just its first `maxBytes` bytes (ask for one byte more than
   * you need to learn whether it was cut). Pseudo-files that never end stop at the limit.
   */
  read(path: string, options?: ReadOptions): Promise<Uint8Array>;
  readText(path: string, options?: ReadOptions): Promise<string>;
  list(path: string): Promise<FileEntry[]>;
  stat(path: string): Promise<FileEntry>;
  exists(path: string): Promise<boolean>;
  /** Creates parents too; an existing directory is fine. */
  mkdir(path: string): Promise<void>;
  /** Never follows symlinks. A directory needs `recursive: true` unless empty. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** A local file or directory into the sandbox. Local symlinks are refused. */
  upload(localPath: string, remotePath: string): Promise<void>;
  /**
   * A sandbox file or directory to the host. Symlinks inside the sandbox are skipped, never
   * followed. At most `maxBytes` in all (default DEFAULT_MAX_DOWNLOAD_BYTES, 1 GiB): past it,
   * SandboxFileError (EFBIG); the file being written is removed, files already written stay.
   */
  download(remotePath: string, localPath: string, options?: DownloadOptions): Promise<void>;
}

export interface ReadOptions {
  /** Most bytes returned (default 64 MiB, at most 1 GiB). */
  maxBytes?: number;
  /** Over maxBytes: return the first maxBytes bytes instead of failing. */
  truncate?: boolean;
}

export interface DownloadOptions {
  /** Most bytes written to the host, all files together (default 1 GiB). */
  maxBytes?: number;
}

function validateRead(options: unknown): { maxBytes: number; truncate: boolean } {
  const o = optionalObject("options", options);
  return {
    maxBytes:
      optionalNumber("options.maxBytes", o.maxBytes, { min: 0, max: MAX_READ_BYTES_LIMIT }) ?? DEFAULT_MAX_READ_BYTES,
    truncate: optionalBoolean("options.truncate", o.truncate) ?? false,
  };
}

function overLimit(path: string, limit: number): SandboxFileError {
  return new SandboxFileError(path, "EFBIG", `the file holds more than ${limit} bytes, the limit (maxBytes)`);
}

type Connect = () => Promise<AgentConnection>;

function fail(path: string, frame: Frame): never {
  const code = String(frame.header.code ?? "EIO");
  const message = String(frame.header.message ?? "file operation failed");
  if (code === "ENOENT") throw new FileNotFoundError(path);
  if (code === "EPROTO" || code === "EINVAL") throw new InvalidArgumentError("path", `${message}: ${path}`);
  throw new SandboxFileError(path, code, message);
}

function expectOk(path: string, frame: Frame): Frame {
  if (frame.header.type === "error") fail(path, frame);
  return frame;
}

export class AgentFiles implements SandboxFiles {
  readonly #connect: Connect;

  constructor(connect: Connect) {
    this.#connect = connect;
  }

  async write(path: string, content: string | Uint8Array): Promise<void> {
    const target = resolveSandboxPath("path", path);
    let bytes: Uint8Array;
    if (typeof content === "string") bytes = Buffer.from(content, "utf8");
    else if (content instanceof Uint8Array) bytes = content;
    else throw new InvalidArgumentError("content", `must be a string or Uint8Array, got ${describe(content)}`);
    await this.#writeChunks(target, chunksOf(bytes));
  }

  /** Streams chunks as one atomic write: every frame shares one request id; the last is final. */
  async #writeChunks(
    target: string,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    mode?: number,
  ): Promise<void> {
    const connection = await this.#connect();
    let reply: Frame | undefined;
    let offset = 0;
    let previous: Uint8Array | undefined;
    let id: number | undefined;
    let finished: Promise<void> | undefined;
    const sendChunk = async (chunk: Uint8Array, final: boolean) => {
      const header = { type: "fs_write", path: target, offset, final, ...(mode === undefined ? {} : { mode }) };
      if (id === undefined) {
        const request = connection.request(
          header,
          (frame) => {
            reply = frame;
            return true;
          },
          chunk,
        );
        id = request.id;
        finished = request.finished;
      } else {
        await connection.send({ ...header, id }, chunk);
      }
      offset += chunk.length;
    };
    // Hold one chunk back so the last one can be sent with final: true.
    for await (const chunk of chunks) {
      if (previous !== undefined) await sendChunk(previous, false);
      previous = chunk;
    }
    await sendChunk(previous ?? new Uint8Array(0), true);
    await finished;
    expectOk(target, reply as Frame);
  }

  async read(path: string, options?: ReadOptions): Promise<Uint8Array> {
    const target = resolveSandboxPath("path", path);
    const { maxBytes, truncate } = validateRead(options);
    const parts: Buffer[] = [];
    await this.#readChunks(target, maxBytes, truncate, (chunk) => parts.push(chunk));
    return Buffer.concat(parts);
  }

  /**
   * Streams a file's chunks to onChunk, never more than `limit` bytes in all: the agent stops
   * there, and the host checks too (whatever the sandbox sends, it never buffers more).
   */
  async #readChunks(target: string, limit: number, truncate: boolean, onChunk: (chunk: Buffer) => void): Promise<void> {
    const connection = await this.#connect();
    let reply: Frame | undefined;
    let received = 0;
    await connection.request({ type: "fs_read", path: target, maxBytes: limit, truncate }, (frame) => {
      if (frame.header.type === "data") {
        received += frame.body.length;
        if (received > limit) throw overLimit(target, limit);
        onChunk(frame.body);
        return false;
      }
      reply = frame;
      return true;
    }).finished;
    expectOk(target, reply as Frame);
  }

  async readText(path: string, options?: ReadOptions): Promise<string> {
    return new TextDecoder("utf-8", { fatal: false }).decode(await this.read(path, options));
  }

  async list(path: string): Promise<FileEntry[]> {
    const target = resolveSandboxPath("path", path);
    return this.#entries(target, "fs_list");
  }

  /** A listing may arrive as several `entries` frames before the final `ok` (large directories). */
  async #entries(target: string, type: "fs_list" | "fs_walk"): Promise<FileEntry[]> {
    const connection = await this.#connect();
    const entries: FileEntry[] = [];
    let reply: Frame | undefined;
    await connection.request({ type, path: target }, (frame) => {
      if (Array.isArray(frame.header.entries)) entries.push(...(frame.header.entries as FileEntry[]));
      if (frame.header.type === "entries") return false;
      reply = frame;
      return true;
    }).finished;
    expectOk(target, reply as Frame);
    return entries;
  }

  async stat(path: string): Promise<FileEntry> {
    const target = resolveSandboxPath("path", path);
    return (await this.#call(target, { type: "fs_stat", path: target })).header.entry as FileEntry;
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path);
      return true;
    } catch (err) {
      if (err instanceof FileNotFoundError) return false;
      throw err;
    }
  }

  async mkdir(path: string): Promise<void> {
    const target = resolveSandboxPath("path", path);
    await this.#call(target, { type: "fs_mkdir", path: target });
  }

  async remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    const target = resolveSandboxPath("path", path);
    const recursive = optionalBoolean("options.recursive", optionalObject("options", options).recursive) ?? false;
    if (target === "/") throw new InvalidArgumentError("path", "refusing to remove the sandbox's root");
    await this.#call(target, { type: "fs_remove", path: target, recursive });
  }

  async upload(localPath: string, remotePath: string): Promise<void> {
    const source = resolve(requireString("localPath", localPath));
    const target = resolveSandboxPath("remotePath", remotePath);
    const info = await lstat(source).catch((err: NodeJS.ErrnoException) => {
      throw new InvalidArgumentError("localPath", `cannot read ${source}: ${err.code ?? err.message}`);
    });
    if (info.isSymbolicLink())
      throw new InvalidArgumentError("localPath", `is a symlink; upload its target instead: ${source}`);
    if (info.isFile()) {
      await this.#writeChunks(target, createReadStream(source, { highWaterMark: FILE_CHUNK_BYTES }), info.mode & 0o777);
      return;
    }
    if (!info.isDirectory())
      throw new InvalidArgumentError("localPath", `is neither a file nor a directory: ${source}`);
    await this.mkdir(target);
    // Walk without following links: a local symlink in the tree is refused before anything is sent.
    const entries = await readdir(source, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (entry.isSymbolicLink()) {
        throw new InvalidArgumentError(
          "localPath",
          `contains a symlink, which upload refuses: ${join(entry.parentPath, entry.name)}`,
        );
      }
    }
    for (const entry of entries) {
      const local = join(entry.parentPath, entry.name);
      const remote = posix.join(target, relative(source, local).split(sep).join("/"));
      if (entry.isDirectory()) await this.mkdir(remote);
      else if (entry.isFile()) {
        const mode = (await lstat(local)).mode & 0o777;
        await this.#writeChunks(remote, createReadStream(local, { highWaterMark: FILE_CHUNK_BYTES }), mode);
      }
    }
  }

  async download(remotePath: string, localPath: string, options?: DownloadOptions): Promise<void> {
    const source = resolveSandboxPath("remotePath", remotePath);
    const destination = resolve(requireString("localPath", localPath));
    const o = optionalObject("options", options);
    const budget = {
      left:
        optionalNumber("options.maxBytes", o.maxBytes, { min: 0, max: Number.MAX_SAFE_INTEGER }) ??
        DEFAULT_MAX_DOWNLOAD_BYTES,
    };
    const entry = await this.stat(source);
    if (entry.type === "file") {
      await this.#downloadFile(source, destination, budget);
      return;
    }
    if (entry.type !== "directory") {
      throw new InvalidArgumentError(
        "remotePath",
        `is a ${entry.type}; download takes a file or a directory: ${source}`,
      );
    }
    const walked = await this.#entries(source, "fs_walk");
    await mkdir(destination, { recursive: true });
    for (const item of walked) {
      const rel = posix.relative(source, item.path);
      // Entries come from the sandbox: refuse anything that would land outside localPath.
      if (rel === "" || rel.startsWith("..") || posix.isAbsolute(rel) || rel.split("/").includes("..")) continue;
      const local = join(destination, ...rel.split("/"));
      if (!local.startsWith(destination + sep)) continue;
      if (item.type === "directory") await mkdir(local, { recursive: true });
      else if (item.type === "file") await this.#downloadFile(item.path, local, budget);
      // Symlinks and special files are skipped: a link could point anywhere on the host.
    }
  }

  /** Streams into a temp file beside the destination, then renames: never writes through a link. */
  async #downloadFile(source: string, destination: string, budget: { left: number }): Promise<void> {
    await mkdir(dirname(destination), { recursive: true });
    const temp = `${destination}.kiln-${process.pid}-${Date.now()}.part`;
    const out = createWriteStream(temp, { flags: "wx" });
    try {
      await this.#readChunks(source, budget.left, false, (chunk) => {
        budget.left -= chunk.length;
        out.write(chunk);
      });
      await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
      await rename(temp, destination);
    } catch (err) {
      out.destroy();
      await rm(temp, { force: true });
      throw err;
    }
  }

  async #call(target: string, header: { type: string; [k: string]: unknown }): Promise<Frame> {
    const connection = await this.#connect();
    return expectOk(target, await connection.call(header));
  }
}

function* chunksOf(bytes: Uint8Array): Iterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += FILE_CHUNK_BYTES) yield bytes.subarray(at, at + FILE_CHUNK_BYTES);
}
