/**
 * sandbox.files over a Kiln server: the same SandboxFiles as in-process. File bodies stream
 * both ways (an upload is read from disk as it is sent, a download written to disk as it
 * arrives), so a large file never sits whole in this process's memory; paths are checked and
 * resolved here exactly as in-process, so errors for bad paths come before any request.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { FILE_CHUNK_BYTES } from "../defaults.ts";
import { FileNotFoundError, InvalidArgumentError } from "../errors.ts";
import type { SandboxFiles } from "../sandbox/files.ts";
import { resolveSandboxPath } from "../sandbox/paths.ts";
import type { FileEntry } from "../types.ts";
import { describe, optionalBoolean, optionalObject, requireString } from "../validate.ts";
import type { HttpClient } from "./http-client.ts";

export class RemoteFiles implements SandboxFiles {
  readonly #client: HttpClient;
  /** `/v1/sandboxes/<id>/files` */
  readonly #base: string;
  readonly #sandbox: string;

  constructor(client: HttpClient, sandboxId: string) {
    this.#client = client;
    this.#sandbox = sandboxId;
    this.#base = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/files`;
  }

  #context(path: string) {
    return { sandbox: this.#sandbox, path };
  }

  async write(path: string, content: string | Uint8Array): Promise<void> {
    const target = resolveSandboxPath("path", path);
    let bytes: Uint8Array;
    if (typeof content === "string") bytes = Buffer.from(content, "utf8");
    else if (content instanceof Uint8Array) bytes = content;
    else throw new InvalidArgumentError("content", `must be a string or Uint8Array, got ${describe(content)}`);
    // The same path as upload(): an oversized body is refused by the server up front.
    await this.#client.upload(this.#base, () => Readable.from(bytes.length === 0 ? [] : [bytes]), {
      query: { path: target },
      contentLength: bytes.length,
      context: this.#context(target),
      what: "files.write",
    });
  }

  async read(path: string): Promise<Uint8Array> {
    const target = resolveSandboxPath("path", path);
    const response = await this.#get(target, "files.read");
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch (err) {
      throw this.#client.failure(err, { what: "files.read" });
    }
  }

  #get(target: string, what: string): Promise<Response> {
    return this.#client.send("GET", this.#base, { query: { path: target }, context: this.#context(target), what });
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder("utf-8", { fatal: false }).decode(await this.read(path));
  }

  async list(path: string): Promise<FileEntry[]> {
    const target = resolveSandboxPath("path", path);
    const answer = await this.#client.json<{ entries: FileEntry[] }>("GET", `${this.#base}/list`, {
      query: { path: target },
      context: this.#context(target),
      what: "files.list",
    });
    return answer.entries;
  }

  async stat(path: string): Promise<FileEntry> {
    const target = resolveSandboxPath("path", path);
    return this.#client.json<FileEntry>("GET", `${this.#base}/stat`, {
      query: { path: target },
      context: this.#context(target),
      what: "files.stat",
    });
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
    await this.#client.empty("POST", `${this.#base}/mkdir`, {
      json: { path: target },
      context: this.#context(target),
      what: "files.mkdir",
    });
  }

  async remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    const target = resolveSandboxPath("path", path);
    const recursive = optionalBoolean("options.recursive", optionalObject("options", options).recursive) ?? false;
    if (target === "/") throw new InvalidArgumentError("path", "refusing to remove the sandbox's root");
    await this.#client.empty("DELETE", this.#base, {
      query: { path: target, ...(recursive ? { recursive: "true" } : {}) },
      context: this.#context(target),
      what: "files.remove",
    });
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
      await this.#uploadFile(source, target, info.size);
      return;
    }
    if (!info.isDirectory())
      throw new InvalidArgumentError("localPath", `is neither a file nor a directory: ${source}`);
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
    await this.mkdir(target);
    for (const entry of entries) {
      const local = join(entry.parentPath, entry.name);
      const remote = posix.join(target, relative(source, local).split(sep).join("/"));
      if (entry.isDirectory()) await this.mkdir(remote);
      else if (entry.isFile()) await this.#uploadFile(local, remote, (await lstat(local)).size);
    }
  }

  /** Streams the file from disk as the socket takes it; the declared length lets the server refuse it up front. */
  #uploadFile(local: string, remote: string, size: number): Promise<void> {
    return this.#client.upload(this.#base, () => createReadStream(local, { highWaterMark: FILE_CHUNK_BYTES }), {
      query: { path: remote },
      contentLength: size,
      context: this.#context(remote),
      what: "files.upload",
    });
  }

  async download(remotePath: string, localPath: string): Promise<void> {
    const source = resolveSandboxPath("remotePath", remotePath);
    const destination = resolve(requireString("localPath", localPath));
    const entry = await this.stat(source);
    if (entry.type === "file") {
      await this.#downloadFile(source, destination);
      return;
    }
    if (entry.type !== "directory") {
      throw new InvalidArgumentError(
        "remotePath",
        `is a ${entry.type}; download takes a file or a directory: ${source}`,
      );
    }
    await mkdir(destination, { recursive: true });
    // Breadth-first over the server's listings; the server has no walk route.
    const pending = [source];
    for (let dir = pending.shift(); dir !== undefined; dir = pending.shift()) {
      for (const item of await this.list(dir)) {
        const rel = posix.relative(source, item.path);
        // Entries come from the sandbox: refuse anything that would land outside localPath.
        if (rel === "" || rel.startsWith("..") || posix.isAbsolute(rel) || rel.split("/").includes("..")) continue;
        const local = join(destination, ...rel.split("/"));
        if (!local.startsWith(destination + sep)) continue;
        if (item.type === "directory") {
          await mkdir(local, { recursive: true });
          pending.push(item.path);
        } else if (item.type === "file") await this.#downloadFile(item.path, local);
        // Symlinks and special files are skipped: a link could point anywhere on the host.
      }
    }
  }

  /** Streams into a temp file beside the destination, then renames: never writes through a link. */
  async #downloadFile(source: string, destination: string): Promise<void> {
    await mkdir(dirname(destination), { recursive: true });
    const response = await this.#get(source, "files.download");
    const temp = `${destination}.kiln-${process.pid}-${Date.now()}.part`;
    try {
      if (!response.body) throw new InvalidArgumentError("remotePath", `the server sent no body for ${source}`);
      await pipeline(
        Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>),
        createWriteStream(temp, { flags: "wx" }),
      );
      await rename(temp, destination);
    } catch (err) {
      await response.body?.cancel().catch(() => {});
      await rm(temp, { force: true });
      // A local disk failure (it has a syscall) is the caller's to see as is, like in-process.
      if (err instanceof InvalidArgumentError || (err as NodeJS.ErrnoException).syscall) throw err;
      throw this.#client.failure(err, { what: "files.download" });
    }
  }
}
