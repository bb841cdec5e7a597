/**
 * KilnFilesystem: a Mastra workspace filesystem (MastraFilesystem) over the files of a Kiln
 * sandbox, so Mastra's file tools and its command tool see the same files.
 *
 * Paths are the container's: relative paths resolve against /workspace (where commands start),
 * absolute paths are used as they are. The sandbox itself is the isolation boundary.
 */
import { posix } from "node:path";
import type { FileEntry as KilnFileEntry, Sandbox } from "@kiln/core";
import { KilnError } from "@kiln/core";
import {
  type CopyOptions,
  DirectoryNotEmptyError,
  DirectoryNotFoundError,
  type FileContent,
  type FileEntry,
  FileExistsError,
  FileNotFoundError,
  type FileStat,
  type FilesystemInfo,
  IsDirectoryError,
  type ListOptions,
  MastraFilesystem,
  type MastraFilesystemOptions,
  NotDirectoryError,
  PermissionError,
  type ProviderStatus,
  type ReadOptions,
  type RemoveOptions,
  StaleFileError,
  WorkspaceReadOnlyError,
  type WriteOptions,
} from "@mastra/core/workspace";
import { WORKDIR } from "../defaults.ts";
import type { KilnSandbox } from "./kiln-sandbox.ts";
import { mimeTypeOf } from "./mime.ts";

export interface KilnFilesystemOptions extends MastraFilesystemOptions {
  /** Whose files: a KilnSandbox (started on first use) or a Kiln sandbox. */
  sandbox: KilnSandbox | Sandbox;
  /** @default a random `kiln-fs-<hex>` */
  id?: string;
  /** Refuse every write. @default false */
  readOnly?: boolean;
}

/** Maps a Kiln file error to Mastra's error for the same condition; anything else is rethrown. */
function translate(err: unknown, path: string): never {
  if (KilnError.isInstance(err)) {
    if (err.code === "FILE_NOT_FOUND") throw new FileNotFoundError(path);
    if (err.code === "FILE_ERROR") {
      const errno = (err as { errno?: string }).errno;
      if (errno === "EISDIR") throw new IsDirectoryError(path);
      if (errno === "ENOTDIR") throw new NotDirectoryError(path);
      if (errno === "ENOTEMPTY") throw new DirectoryNotEmptyError(path);
      if (errno === "EEXIST") throw new FileExistsError(path);
      if (errno === "EACCES" || errno === "EPERM") throw new PermissionError(path, "access");
    }
  }
  throw err;
}

function toBytes(content: FileContent): string | Uint8Array {
  return typeof content === "string" ? content : new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
}

function isDirectory(entry: KilnFileEntry): boolean {
  return entry.type === "directory";
}

export class KilnFilesystem extends MastraFilesystem {
  readonly id: string;
  readonly name = "KilnFilesystem";
  readonly provider = "kiln";
  readonly readOnly: boolean;
  status: ProviderStatus = "pending";
  readonly #source: KilnSandbox | Sandbox;

  constructor(options: KilnFilesystemOptions) {
    if (!options?.sandbox) throw new TypeError("KilnFilesystem: pass { sandbox }");
    super({ ...options, name: "KilnFilesystem" });
    this.#source = options.sandbox;
    this.id = options.id ?? `kiln-fs-${Math.random().toString(36).slice(2, 10)}`;
    this.readOnly = options.readOnly ?? false;
  }

  /** The absolute container path of `path`. */
  resolve(path: string): string {
    return posix.resolve(WORKDIR, path);
  }

  async #sandbox(): Promise<Sandbox> {
    await this.ensureReady();
    const source = this.#source;
    return "getSandbox" in source ? source.getSandbox() : source;
  }

  #writable(operation: string): void {
    if (this.readOnly) throw new WorkspaceReadOnlyError(operation);
  }

  async #stat(sandbox: Sandbox, path: string): Promise<KilnFileEntry | undefined> {
    try {
      return await sandbox.files.stat(path);
    } catch (err) {
      if (KilnError.isInstance(err) && err.code === "FILE_NOT_FOUND") return undefined;
      return translate(err, path);
    }
  }

  /** Runs argv in the sandbox; a non-zero exit becomes an Error with its stderr. */
  async #run(sandbox: Sandbox, argv: string[], stdin?: string | Uint8Array): Promise<string> {
    const result = await sandbox.exec(argv, { cwd: WORKDIR, ...(stdin === undefined ? {} : { stdin }) });
    if (result.status !== "ok") throw new Error(`${argv[0]} failed in the sandbox: ${result.stderr.trim()}`);
    return result.stdout;
  }

  async readFile(path: string, options?: ReadOptions): Promise<string | Buffer> {
    const sandbox = await this.#sandbox();
    const entry = await this.#stat(sandbox, path);
    if (!entry) throw new FileNotFoundError(path);
    if (isDirectory(entry)) throw new IsDirectoryError(path);
    const bytes = Buffer.from(await sandbox.files.read(path).catch((err: unknown) => translate(err, path)));
    return options?.encoding ? bytes.toString(options.encoding) : bytes;
  }

  async writeFile(path: string, content: FileContent, options: WriteOptions = {}): Promise<void> {
    this.#writable("writeFile");
    const sandbox = await this.#sandbox();
    const target = this.resolve(path);
    if (options.recursive === false) {
      const parent = await this.#stat(sandbox, posix.dirname(target));
      if (!parent) throw new DirectoryNotFoundError(posix.dirname(path));
      if (!isDirectory(parent)) throw new NotDirectoryError(posix.dirname(path));
    }
    if (options.overwrite === false || options.expectedMtime) {
      const existing = await this.#stat(sandbox, target);
      if (existing && options.overwrite === false) throw new FileExistsError(path);
      if (existing && options.expectedMtime) {
        const actual = new Date(existing.modifiedAt);
        if (actual.getTime() !== options.expectedMtime.getTime()) {
          throw new StaleFileError(path, options.expectedMtime, actual);
        }
      }
    }
    await sandbox.files.write(target, toBytes(content)).catch((err: unknown) => translate(err, path));
  }

  async appendFile(path: string, content: FileContent): Promise<void> {
    this.#writable("appendFile");
    const sandbox = await this.#sandbox();
    const target = this.resolve(path);
    await this.#run(
      sandbox,
      ["sh", "-c", 'mkdir -p -- "$(dirname -- "$1")" && cat >> "$1"', "sh", target],
      toBytes(content),
    );
  }

  async deleteFile(path: string, options: RemoveOptions = {}): Promise<void> {
    this.#writable("deleteFile");
    const sandbox = await this.#sandbox();
    const entry = await this.#stat(sandbox, path);
    if (!entry) {
      if (options.force) return;
      throw new FileNotFoundError(path);
    }
    if (isDirectory(entry)) throw new IsDirectoryError(path);
    await sandbox.files.remove(path).catch((err: unknown) => translate(err, path));
  }

  async copyFile(src: string, dest: string, options: CopyOptions = {}): Promise<void> {
    this.#writable("copyFile");
    await this.#transfer("cp", src, dest, options);
  }

  async moveFile(src: string, dest: string, options: CopyOptions = {}): Promise<void> {
    this.#writable("moveFile");
    await this.#transfer("mv", src, dest, { ...options, recursive: true });
  }

  async #transfer(tool: "cp" | "mv", src: string, dest: string, options: CopyOptions): Promise<void> {
    const sandbox = await this.#sandbox();
    const source = await this.#stat(sandbox, src);
    if (!source) throw new FileNotFoundError(src);
    if (isDirectory(source) && tool === "cp" && !options.recursive) throw new IsDirectoryError(src);
    const target = this.resolve(dest);
    if (options.overwrite === false && (await this.#stat(sandbox, target))) throw new FileExistsError(dest);
    const flags = tool === "cp" ? ["-R", ...(options.overwrite === false ? ["-n"] : [])] : ["-f"];
    await this.#run(sandbox, ["mkdir", "-p", "--", posix.dirname(target)]);
    await this.#run(sandbox, [tool, ...flags, "--", this.resolve(src), target]);
  }

  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    this.#writable("mkdir");
    const sandbox = await this.#sandbox();
    const existing = await this.#stat(sandbox, path);
    if (existing) {
      if (isDirectory(existing)) return;
      throw new FileExistsError(path);
    }
    if (options.recursive === false) {
      const parent = await this.#stat(sandbox, posix.dirname(this.resolve(path)));
      if (!parent) throw new DirectoryNotFoundError(posix.dirname(path));
    }
    await sandbox.files.mkdir(path).catch((err: unknown) => translate(err, path));
  }

  async rmdir(path: string, options: RemoveOptions = {}): Promise<void> {
    this.#writable("rmdir");
    const sandbox = await this.#sandbox();
    const entry = await this.#stat(sandbox, path);
    if (!entry) {
      if (options.force) return;
      throw new DirectoryNotFoundError(path);
    }
    if (!isDirectory(entry)) throw new NotDirectoryError(path);
    await sandbox.files
      .remove(path, { recursive: options.recursive ?? false })
      .catch((err: unknown) => translate(err, path));
  }

  async readdir(path: string, options: ListOptions = {}): Promise<FileEntry[]> {
    const sandbox = await this.#sandbox();
    const entry = await this.#stat(sandbox, path);
    if (!entry) throw new DirectoryNotFoundError(path);
    if (!isDirectory(entry)) throw new NotDirectoryError(path);
    const extensions = options.extension === undefined ? undefined : [options.extension].flat();
    const wanted = (name: string) =>
      !extensions || extensions.some((ext) => posix.extname(name) === (ext.startsWith(".") ? ext : `.${ext}`));
    const result: FileEntry[] = [];
    const walk = async (dir: string, prefix: string, depth: number) => {
      const entries = await sandbox.files.list(dir).catch((err: unknown) => translate(err, dir));
      for (const child of entries) {
        const name = `${prefix}${child.name}`;
        if (isDirectory(child)) {
          result.push({ name, type: "directory" });
          if (options.recursive && depth > 0) await walk(child.path, `${name}/`, depth - 1);
        } else if (wanted(child.name)) {
          result.push({
            name,
            type: "file",
            size: child.size,
            ...(child.type === "symlink" ? { isSymlink: true } : {}),
          });
        }
      }
    };
    await walk(this.resolve(path), "", options.maxDepth ?? 100);
    return result;
  }

  async exists(path: string): Promise<boolean> {
    const sandbox = await this.#sandbox();
    return sandbox.files.exists(path).catch((err: unknown) => translate(err, path));
  }

  async stat(path: string): Promise<FileStat> {
    const sandbox = await this.#sandbox();
    const entry = await this.#stat(sandbox, path);
    if (!entry) throw new FileNotFoundError(path);
    const modifiedAt = new Date(entry.modifiedAt);
    const mimeType = isDirectory(entry) ? undefined : mimeTypeOf(entry.name);
    return {
      name: entry.name,
      path: entry.path,
      type: isDirectory(entry) ? "directory" : "file",
      size: isDirectory(entry) ? 0 : entry.size,
      // Linux reports no birth time through Kiln: the modification time stands in.
      createdAt: modifiedAt,
      modifiedAt,
      ...(mimeType ? { mimeType } : {}),
    };
  }

  async realpath(path: string): Promise<string> {
    const sandbox = await this.#sandbox();
    if (!(await this.#stat(sandbox, path))) throw new FileNotFoundError(path);
    return (await this.#run(sandbox, ["realpath", "--", this.resolve(path)])).trim();
  }

  getInstructions(): string {
    return [
      "Files live in the sandbox container. Relative paths resolve against /workspace, the directory",
      "commands start in, so a file written here is visible to commands at the same path.",
      this.readOnly ? "This filesystem is read-only." : "",
    ]
      .join(" ")
      .trim();
  }

  getInfo(): FilesystemInfo {
    return {
      id: this.id,
      name: this.name,
      provider: this.provider,
      status: this.status,
      readOnly: this.readOnly,
      ...(this.error ? { error: this.error } : {}),
      metadata: { workingDirectory: WORKDIR, sandbox: this.#source.id },
    };
  }
}
