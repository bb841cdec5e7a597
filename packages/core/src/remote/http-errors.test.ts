import { describe, expect, it } from "vitest";
import {
  EngineUnavailableError,
  FileNotFoundError,
  InvalidArgumentError,
  KilnError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  SandboxFileError,
  SandboxNotFoundError,
  UnauthorizedError,
} from "../errors.ts";
import { errorFromBody, errorFromResponse, parseErrorBody, parseRetryAfter } from "./http-errors.ts";

const url = "http://127.0.0.1:7420";

describe("errors from a Kiln server", () => {
  it("maps each code to the class core throws in-process, keeping the server's message", () => {
    const notFound = errorFromBody(
      { code: "SANDBOX_NOT_FOUND", message: 'No sandbox with id or name "x"' },
      { sandbox: "x" },
    );
    expect(notFound).toBeInstanceOf(SandboxNotFoundError);
    expect(notFound.code).toBe("SANDBOX_NOT_FOUND");
    expect(notFound.message).toBe('No sandbox with id or name "x"');

    const file = errorFromBody({ code: "FILE_NOT_FOUND", message: "gone" }, { path: "/workspace/a" });
    expect(file).toBeInstanceOf(FileNotFoundError);
    expect((file as FileNotFoundError).path).toBe("/workspace/a");

    const invalid = errorFromBody({ code: "INVALID_ARGUMENT", message: "timeoutMs: too big", field: "timeoutMs" });
    expect(invalid).toBeInstanceOf(InvalidArgumentError);
    expect((invalid as InvalidArgumentError).field).toBe("timeoutMs");
    expect(invalid.message).toBe("timeoutMs: too big");

    const fileError = errorFromBody(
      { code: "FILE_ERROR", message: "Is a directory (EISDIR): /workspace" },
      { path: "/workspace" },
    );
    expect(fileError).toBeInstanceOf(SandboxFileError);
    expect((fileError as SandboxFileError).errno).toBe("EISDIR");

    expect(errorFromBody({ code: "ENGINE_UNAVAILABLE", message: "down" })).toBeInstanceOf(EngineUnavailableError);
    expect(errorFromBody({ code: "UNAUTHORIZED", message: "bad key" })).toBeInstanceOf(UnauthorizedError);
    expect(errorFromBody({ code: "NOT_FOUND", message: "no route" })).toBeInstanceOf(NotFoundError);
  });

  it("keeps an unknown code as a KilnError with that code", () => {
    const e = errorFromBody({ code: "SOMETHING_NEW", message: "newer server" });
    expect(KilnError.isInstance(e)).toBe(true);
    expect(e.code).toBe("SOMETHING_NEW");
  });

  it("reads Retry-After into RateLimitedError", () => {
    const e = errorFromResponse(
      429,
      JSON.stringify({ error: { code: "RATE_LIMITED", message: "slow down" } }),
      new Headers({ "retry-after": "30" }),
      url,
    );
    expect(e).toBeInstanceOf(RateLimitedError);
    expect((e as RateLimitedError).retryAfterMs).toBe(30_000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(60_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });

  it("falls back on the status when the body is not a Kiln error (a proxy's page), naming the URL", () => {
    const e = errorFromResponse(413, "<html>Request Entity Too Large</html>", new Headers(), url);
    expect(e).toBeInstanceOf(PayloadTooLargeError);
    expect(e.message).toContain(url);
    expect(errorFromResponse(500, "", new Headers(), url).code).toBe("INTERNAL");
    expect(errorFromResponse(401, "nope", new Headers(), url).code).toBe("UNAUTHORIZED");
  });

  it("accepts only well-formed error bodies", () => {
    expect(parseErrorBody({ error: { code: "CONFLICT", message: "taken", field: "name" } })).toEqual({
      code: "CONFLICT",
      message: "taken",
      field: "name",
    });
    expect(parseErrorBody({ error: "x" })).toBeUndefined();
    expect(parseErrorBody({ error: { message: "no code" } })).toBeUndefined();
    expect(parseErrorBody(null)).toBeUndefined();
  });
});
