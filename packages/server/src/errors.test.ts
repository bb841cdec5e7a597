import { FileNotFoundError, InvalidArgumentError, KilnError, SandboxNotFoundError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { HttpError, mapError, STATUS_BY_CODE } from "./errors.ts";

describe("mapError", () => {
  it("maps every core code of design/server.md to its status", () => {
    expect(STATUS_BY_CODE).toMatchObject({
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
      ENGINE_UNAVAILABLE: 503,
      AGENT_UNAVAILABLE: 503,
      ENGINE_ERROR: 502,
    });
    expect(mapError(new FileNotFoundError("/x")).status).toBe(404);
  });

  it("names the field without core's options. prefix, and scrubs organisation prefixes", () => {
    const mapped = mapError(new InvalidArgumentError("options.resources.memoryMb", "must be >= 16"));
    expect(mapped.body.error).toEqual({
      code: "INVALID_ARGUMENT",
      message: "resources.memoryMb: must be >= 16",
      field: "resources.memoryMb",
    });
    const scrubbed = mapError(new SandboxNotFoundError("org1.dev"), (m) => m.replace("org1.", ""));
    expect(scrubbed.body.error.message).toBe('No sandbox with id or name "dev"');
  });

  it("turns anything else into a 500 INTERNAL without its message", () => {
    const mapped = mapError(new Error("secret at /src/x.ts:1"));
    expect(mapped).toMatchObject({ status: 500, internal: true, body: { error: { code: "INTERNAL" } } });
    expect(JSON.stringify(mapped.body)).not.toContain("secret");
    expect(mapError(new KilnError("ABORTED", "aborted")).status).toBe(500);
  });

  it("carries Retry-After for rate limits", () => {
    const mapped = mapError(new HttpError("RATE_LIMITED", "slow down", { retryAfter: 12 }));
    expect(mapped).toMatchObject({ status: 429, headers: { "retry-after": "12" } });
  });
});
