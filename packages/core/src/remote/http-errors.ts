/**
 * A Kiln server's error answers, turned back into the KilnError subclasses @kiln/core throws
 * in-process: one table from `code` to class, so `err.code` and `instanceof` agree whether the
 * sandbox is local or behind a server. The server's message is kept as it was sent.
 */
import {
  AgentUnavailableError,
  ConflictError,
  EngineError,
  EngineUnavailableError,
  FileNotFoundError,
  ForbiddenError,
  ImageBuildError,
  InternalServerError,
  InvalidArgumentError,
  KilnError,
  type KilnErrorCode,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  QuotaExceededError,
  RateLimitedError,
  SandboxFileError,
  SandboxNotFoundError,
  SandboxNotRunningError,
  SnapshotNotFoundError,
  UnauthorizedError,
  VolumeNotFoundError,
} from "../errors.ts";

/** What the failed request was about, for errors whose class carries it (a path, a sandbox id). */
export interface ErrorContext {
  sandbox?: string;
  path?: string;
  name?: string;
  /** The Retry-After header, in milliseconds. */
  retryAfterMs?: number;
}

/** The body every Kiln server error has: `{ error: { code, message, field? } }`. */
export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
}

type Make = (message: string, body: ErrorBody, context: ErrorContext) => KilnError;

/** Classes whose constructor builds its own message get the server's message put back. */
function keep<E extends KilnError>(error: E, message: string): E {
  error.message = message;
  return error;
}

const BY_CODE: Record<string, Make> = {
  ENGINE_UNAVAILABLE: (m) => new EngineUnavailableError(m),
  SANDBOX_NOT_FOUND: (m, _b, c) => keep(new SandboxNotFoundError(c.sandbox ?? c.name ?? ""), m),
  FILE_NOT_FOUND: (m, _b, c) => keep(new FileNotFoundError(c.path ?? ""), m),
  SNAPSHOT_NOT_FOUND: (m, _b, c) => keep(new SnapshotNotFoundError(c.name ?? ""), m),
  VOLUME_NOT_FOUND: (m, _b, c) => keep(new VolumeNotFoundError(c.name ?? ""), m),
  INVALID_ARGUMENT: (m, b) => keep(new InvalidArgumentError(b.field ?? "request", m), m),
  QUOTA_EXCEEDED: (m) => new QuotaExceededError(m),
  CONFLICT: (m) => new ConflictError(m),
  NOT_SUPPORTED: (m) => new NotSupportedError(m),
  SANDBOX_NOT_RUNNING: (m, _b, c) => keep(new SandboxNotRunningError(c.sandbox ?? "", "not running"), m),
  IMAGE_BUILD_FAILED: (m) => new ImageBuildError(m),
  AGENT_UNAVAILABLE: (m) => new AgentUnavailableError(m),
  FILE_ERROR: (m, _b, c) => keep(new SandboxFileError(c.path ?? "", /\((E[A-Z0-9]+)\)/.exec(m)?.[1] ?? "EIO", m), m),
  ENGINE_ERROR: (m) => new EngineError(m),
  UNAUTHORIZED: (m) => new UnauthorizedError(m),
  FORBIDDEN: (m) => new ForbiddenError(m),
  RATE_LIMITED: (m, _b, c) =>
    new RateLimitedError(m, c.retryAfterMs === undefined ? {} : { retryAfterMs: c.retryAfterMs }),
  PAYLOAD_TOO_LARGE: (m) => new PayloadTooLargeError(m),
  NOT_FOUND: (m) => new NotFoundError(m),
  INTERNAL: (m) => new InternalServerError(m),
};

/** The code an answer without a readable error body stands for, by HTTP status. */
export function codeForStatus(status: number): KilnErrorCode {
  if (status === 400) return "INVALID_ARGUMENT";
  if (status === 401) return "UNAUTHORIZED";
  if (status === 403) return "FORBIDDEN";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "CONFLICT";
  if (status === 413) return "PAYLOAD_TOO_LARGE";
  if (status === 429) return "RATE_LIMITED";
  if (status === 502) return "ENGINE_ERROR";
  if (status === 503) return "ENGINE_UNAVAILABLE";
  return "INTERNAL";
}

/** The KilnError for an error body (from a JSON answer or a stream's `error` event). */
export function errorFromBody(body: ErrorBody, context: ErrorContext = {}): KilnError {
  const make = BY_CODE[body.code];
  if (make) return make(body.message, body, context);
  // A code this client does not know yet (a newer server): still a KilnError, with the server's code.
  return new KilnError(body.code as KilnErrorCode, body.message);
}

/** Reads `{ error: { code, message, field? } }` out of any JSON value; undefined when it is not one. */
export function parseErrorBody(value: unknown): ErrorBody | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const error = (value as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, field } = error as Record<string, unknown>;
  if (typeof code !== "string" || code === "") return undefined;
  return {
    code,
    message: typeof message === "string" ? message : code,
    ...(typeof field === "string" ? { field } : {}),
  };
}

/** The KilnError for a failed answer: its body when it is a Kiln error body, else by status. */
export function errorFromResponse(
  status: number,
  bodyText: string,
  headers: Headers,
  url: string,
  context: ErrorContext = {},
): KilnError {
  const retryAfterMs = parseRetryAfter(headers.get("retry-after"));
  const full = retryAfterMs === undefined ? context : { ...context, retryAfterMs };
  let parsed: ErrorBody | undefined;
  try {
    parsed = parseErrorBody(JSON.parse(bodyText));
  } catch {
    parsed = undefined;
  }
  if (parsed) return errorFromBody(parsed, full);
  const excerpt = bodyText.trim().slice(0, 200);
  return errorFromBody(
    {
      code: codeForStatus(status),
      message: `The Kiln server at ${url} answered HTTP ${status}${excerpt ? `: ${excerpt}` : ""}`,
    },
    full,
  );
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
