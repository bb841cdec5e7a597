/**
 * Kubernetes `Status` objects for errors, as the API server returns them
 * (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ and
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#http-status-codes).
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** `kind` is the resource's plural lowercase group-qualified name as the server prints it, e.g. "pods". */
export const notFound = (resource: string, name: string) =>
  new ApiError(404, "NotFound", `${resource} "${name}" not found`, { name, kind: resource });

export const alreadyExists = (resource: string, name: string) =>
  new ApiError(409, "AlreadyExists", `${resource} "${name}" already exists`, { name, kind: resource });

export const conflict = (resource: string, name: string) =>
  new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: resource },
  );

export const badRequest = (message: string) => new ApiError(400, "BadRequest", message);

export const forbidden = (resource: string, name: string, message: string) =>
  new ApiError(403, "Forbidden", `${resource} "${name}" is forbidden: ${message}`, { name, kind: resource });

/** 422 with field causes, e.g. `Pod "x" is invalid: spec.containers[0].image: Required value`. */
export function invalid(kind: string, name: string, causes: StatusCause[]): ApiError {
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  const listed = causes.length > 1 ? `[${text}]` : text;
  return new ApiError(422, "Invalid", `${kind} "${name}" is invalid: ${listed}`, {
    name,
    kind: kind.toLowerCase(),
    causes: causes.map((c) => ({ reason: c.reason ?? "FieldValueInvalid", message: c.message, field: c.field })),
  });
}

export const gone = (message: string) => new ApiError(410, "Expired", message);

export const unauthorized = () => new ApiError(401, "Unauthorized", "Unauthorized");

export const methodNotAllowed = () =>
  new ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

export const unsupportedMediaType = (type: string) =>
  new ApiError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type})`,
  );
