/**
 * KilnSandboxBackend: a Kiln sandbox as the filesystem and shell of a LangChain deep agent.
 *
 * deepagents' `BaseSandbox` builds every filesystem operation (ls, read, grep, glob, edit,
 * delete) from three primitives, which this class maps onto Kiln: `execute` onto `sandbox.exec`,
 * `uploadFiles` onto `sandbox.files.write`, `downloadFiles` onto `sandbox.files.read`.
 */
import { type CreateSandboxOptions, InvalidArgumentError, type Kiln, KilnError, type Sandbox } from "@kiln/core";
import { DEFAULT_TOOL_TIMEOUT_MS } from "@kiln/core/tools";
import {
  BaseSandbox,
  type ExecuteResponse,
  type FileDownloadResponse,
  type FileOperationError,
  type FileUploadResponse,
} from "deepagents";

export interface KilnSandboxBackendOptions {
  /** Time limit of each `execute` command; on timeout the output ends with a note and exitCode is null. @default 60_000 */
  timeoutMs?: number;
  /** Per stream, passed to `sandbox.exec`; beyond it output is cut and `truncated` is true. @default 1 MiB (core's default) */
  maxOutputBytes?: number;
}

/** Maps what went wrong with one file onto deepagents' error codes; undefined: not a per-file error. */
function fileError(err: unknown): FileOperationError | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  if (err.code === "FILE_NOT_FOUND") return "file_not_found";
  if (err.code === "INVALID_ARGUMENT") return "invalid_path";
  if (err.code !== "FILE_ERROR") return undefined;
  const errno = (err as KilnError & { errno?: string }).errno;
  if (errno === "EACCES" || errno === "EPERM" || errno === "EROFS") return "permission_denied";
  if (errno === "EISDIR") return "is_directory";
  return "invalid_path";
}

export class KilnSandboxBackend extends BaseSandbox {
  /** The Kiln sandbox id. */
  readonly id: string;
  readonly sandbox: Sandbox;
  readonly #timeoutMs: number;
  readonly #maxOutputBytes: number | undefined;

  constructor(sandbox: Sandbox, options: KilnSandboxBackendOptions = {}) {
    super();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new InvalidArgumentError("timeoutMs", `must be a positive number; got ${timeoutMs}`);
    this.sandbox = sandbox;
    this.id = sandbox.id;
    this.#timeoutMs = timeoutMs;
    this.#maxOutputBytes = options.maxOutputBytes;
  }

  /**
   * A backend on a new sandbox, or on the named one when `name` is given (`kiln.getOrCreate`),
   * so a deep agent can come back to its files. You own the sandbox: `backend.sandbox.delete()`.
   */
  static async create(
    kiln: Kiln,
    options: CreateSandboxOptions & KilnSandboxBackendOptions = {},
  ): Promise<KilnSandboxBackend> {
    const { timeoutMs, maxOutputBytes, name, ...sandboxOptions } = options;
    const sandbox =
      name === undefined ? await kiln.create(sandboxOptions) : await kiln.getOrCreate(name, sandboxOptions);
    return new KilnSandboxBackend(sandbox, {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
    });
  }

  /** Runs a shell command (sh -c) in /workspace; stdout, then stderr, in one output. */
  async execute(command: string): Promise<ExecuteResponse> {
    const result = await this.sandbox.exec(command, {
      timeoutMs: this.#timeoutMs,
      ...(this.#maxOutputBytes === undefined ? {} : { maxOutputBytes: this.#maxOutputBytes }),
    });
    let output = result.stdout;
    if (result.stderr) output += (output && !output.endsWith("\n") ? "\n" : "") + result.stderr;
    const note =
      result.status === "timeout"
        ? `[command timed out after ${this.#timeoutMs / 1000} s and was killed]`
        : result.status === "oom"
          ? "[command ran out of memory and was killed]"
          : result.status === "killed"
            ? "[command was killed]"
            : undefined;
    if (note) output += (output && !output.endsWith("\n") ? "\n" : "") + note;
    const finished = result.status === "ok" || result.status === "error";
    return { output, exitCode: finished ? result.exitCode : null, truncated: result.truncated };
  }

  /**
   * Writes each file (parents created); one failing file does not fail the others. The files are
   * written concurrently, so a batch holding both `a` and `a/b` has no defined order.
   */
  async uploadFiles(files: Array<[string, Uint8Array]>): Promise<FileUploadResponse[]> {
    return Promise.all(
      files.map(async ([path, content]): Promise<FileUploadResponse> => {
        try {
          await this.sandbox.files.write(path, content);
          return { path, error: null };
        } catch (err) {
          const error = fileError(err);
          if (error === undefined) throw err;
          return { path, error };
        }
      }),
    );
  }

  /** Reads each file; one missing file does not fail the others. */
  async downloadFiles(paths: string[]): Promise<FileDownloadResponse[]> {
    return Promise.all(
      paths.map(async (path): Promise<FileDownloadResponse> => {
        try {
          return { path, content: await this.sandbox.files.read(path), error: null };
        } catch (err) {
          const error = fileError(err);
          if (error === undefined) throw err;
          return { path, content: null, error };
        }
      }),
    );
  }
}
