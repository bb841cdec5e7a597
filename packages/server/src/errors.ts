/**
 * The one table from error codes to HTTP statuses (design/server.md), and the one function
 * that turns anything thrown into the error body. Routes never pick a status for an error.
 */
import { KilnError } from "@kiln/core";

/** Codes only the HTTP layer produces (core's KilnErrorCode holds the rest). */
export type HttpErrorCode =
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "PAYLOAD_TOO_LARGE"
  | "RATE_LIMITED"
  | "QUOTA_EXCEEDED"
  | "INVALID_ARGUMENT"
  | "INTERNAL";

export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_SUPPORTED: 400,
  FILE_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  SANDBOX_NOT_FOUND: 404,
  FILE_NOT_FOUND: 404,
  SNAPSHOT_NOT_FOUND: 404,
  VOLUME_NOT_FOUND: 404,
  NOT_FOUND: 404,
  CONFLICT: 409,
  SANDBOX_NOT_RUNNING: 409,
  PAYLOAD_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 429,
  RATE_LIMITED: 429,
  IMAGE_BUILD_FAILED: 422,
  ENGINE_ERROR: 502,
  ENGINE_UNAVAILABLE: 503,
  AGENT_UNAVAILABLE: 503,
};

/** An error the HTTP layer raises itself (auth, routing, limits, request validation). */
export class HttpError extends Error {
  readonly code: HttpErrorCode;
  readonly field?: string;
  /** Seconds, for 429. */
  readonly retryAfter?: number;

  constructor(code: HttpErrorCode, message: string, options: { field?: string; retryAfter?: number } = {}) {
    super(message);
    this.name = "HttpError";
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

export interface MappedError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True when the error is ours (a bug or an unknown fault): log it with its stack. */
  internal: boolean;
}

/**
 * Any thrown value to status + body. `scrub` rewrites messages that may carry core's
 * organisation-scoped names back into the caller's names.
 */
export function mapError(err: unknown, scrub: (message: string) => string = (m) => m): MappedError {
  if (err instanceof HttpError) {
    return {
      status: STATUS_BY_CODE[err.code] ?? 500,
      body: { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } },
      headers: err.retryAfter === undefined ? {} : { "retry-after": String(err.retryAfter) },
      internal: false,
    };
  }
  if (KilnError.isInstance(err)) {
    const status = STATUS_BY_CODE[err.code];
    if (status !== undefined) {
      const field = (err as { field?: unknown }).field;
      return {
        status,
        body: {
          error: {
            code: err.code,
            message: scrub(err.message.replace(/^options\./, "")),
            ...(typeof field === "string" ? { field: scrub(field.replace(/^options\./, "")) } : {}),
          },
        },
        headers: {},
        internal: false,
      };
    }
  }
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: "Internal server error: the server's log has the details" } },
    headers: {},
    internal: true,
  };
}
