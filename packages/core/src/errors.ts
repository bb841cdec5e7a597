/**
 * One error root for everything Kiln throws. Failures of the user's code are never thrown:
 * they come back as `CommandResult` / `Execution` data. Errors are thrown for bad arguments
 * and for infrastructure faults only.
 */

const MARKER = Symbol.for("kiln.error");

export type KilnErrorCode =
  | "ENGINE_UNAVAILABLE"
  | "SANDBOX_NOT_FOUND"
  | "FILE_NOT_FOUND"
  | "SNAPSHOT_NOT_FOUND"
  | "VOLUME_NOT_FOUND"
  | "INVALID_ARGUMENT"
  | "QUOTA_EXCEEDED"
  | "CONFLICT"
  | "NOT_SUPPORTED"
  | "SANDBOX_NOT_RUNNING"
  | "IMAGE_BUILD_FAILED"
  | "AGENT_UNAVAILABLE"
  | "ABORTED"
  | "FILE_ERROR"
  | "ENGINE_ERROR"
  // The remote client (new Kiln({ url })): codes a Kiln server answers with, and its own.
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "RATE_LIMITED"
  | "PAYLOAD_TOO_LARGE"
  | "NOT_FOUND"
  | "INTERNAL"
  | "SERVER_UNAVAILABLE";

export class KilnError extends Error {
  readonly code: KilnErrorCode;
  readonly [MARKER] = true;

  constructor(code: KilnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** True for a KilnError from any copy of @kiln/core (adapters may load a second one). */
  static isInstance(value: unknown): value is KilnError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** No Docker engine answers. The message says how to get one. */
export class EngineUnavailableError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ENGINE_UNAVAILABLE", message, options);
  }
}

export class SandboxNotFoundError extends KilnError {
  constructor(idOrName: string, options?: { cause?: unknown }) {
    super("SANDBOX_NOT_FOUND", `No sandbox with id or name "${idOrName}"`, options);
  }
}

export class FileNotFoundError extends KilnError {
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super("FILE_NOT_FOUND", `No such file or directory in the sandbox: ${path}`, options);
    this.path = path;
  }
}

export class SnapshotNotFoundError extends KilnError {
  constructor(name: string, options?: { cause?: unknown }) {
    super("SNAPSHOT_NOT_FOUND", `No snapshot named "${name}"`, options);
  }
}

export class VolumeNotFoundError extends KilnError {
  constructor(name: string, options?: { cause?: unknown }) {
    super("VOLUME_NOT_FOUND", `No volume named "${name}"`, options);
  }
}

/** A caller passed a value Kiln cannot use. `field` names it, e.g. "resources.memoryMb". */
export class InvalidArgumentError extends KilnError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super("INVALID_ARGUMENT", `${field}: ${message}`, options);
    this.field = field;
  }
}

/**
 * A quota is used up. Thrown by a Kiln server (`new Kiln({ url })`) when an organisation's quota
 * (sandboxes, CPU, memory, storage) would be exceeded; the local Docker runtime has no quotas.
 */
export class QuotaExceededError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("QUOTA_EXCEEDED", message, options);
  }
}

/** The request conflicts with existing state: a name taken, a volume in use. */
export class ConflictError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFLICT", message, options);
  }
}

/** The engine cannot do what was asked here (e.g. a disk quota on a storage driver without one). */
export class NotSupportedError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NOT_SUPPORTED", message, options);
  }
}

export class SandboxNotRunningError extends KilnError {
  constructor(id: string, state: string, options?: { cause?: unknown }) {
    super("SANDBOX_NOT_RUNNING", `Sandbox ${id} is ${state}: call sandbox.start() first`, options);
  }
}

export class ImageBuildError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("IMAGE_BUILD_FAILED", message, options);
  }
}

/** The in-sandbox agent could not be reached or went away mid-request. */
export class AgentUnavailableError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("AGENT_UNAVAILABLE", message, options);
  }
}

/** A file operation failed inside the sandbox for a reason other than a missing path. */
export class SandboxFileError extends KilnError {
  readonly path: string;
  readonly errno: string;
  constructor(path: string, errno: string, message: string) {
    super("FILE_ERROR", `${message} (${errno}): ${path}`);
    this.path = path;
    this.errno = errno;
  }
}

export class AbortedError extends KilnError {
  constructor(what: string, options?: { cause?: unknown }) {
    super("ABORTED", `${what} was aborted`, options);
  }
}

export class EngineError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ENGINE_ERROR", message, options);
  }
}

/** Throws AbortedError when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, { cause: signal.reason });
}

// --- Errors of the remote client (new Kiln({ url })): what a Kiln server answers over HTTP ---

/** The server refused the API key: missing, unknown, revoked or expired. */
export class UnauthorizedError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("UNAUTHORIZED", message, options);
  }
}

/** The key is valid but may not do this (a scope it lacks, another sandbox, an admission hook said no). */
export class ForbiddenError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("FORBIDDEN", message, options);
  }
}

/** Too many requests (e.g. failed logins from this address); try again after `retryAfterMs`. */
export class RateLimitedError extends KilnError {
  /** From the server's Retry-After header, when it sent one. */
  readonly retryAfterMs?: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super("RATE_LIMITED", message, options);
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** A body (an upload) over the server's limit (`kiln serve --max-upload-mb`). */
export class PayloadTooLargeError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("PAYLOAD_TOO_LARGE", message, options);
  }
}

/** The server has no such route or resource (one without a more specific *_NOT_FOUND code). */
export class NotFoundError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("NOT_FOUND", message, options);
  }
}

/** The server failed in a way it does not explain (HTTP 500); its log says more. */
export class InternalServerError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("INTERNAL", message, options);
  }
}

/** No Kiln server answers at the URL (refused, unknown host, connection cut). The message names the URL. */
export class ServerUnavailableError extends KilnError {
  readonly url: string;
  constructor(url: string, message: string, options?: { cause?: unknown }) {
    super("SERVER_UNAVAILABLE", message, options);
    this.url = url;
  }
}
