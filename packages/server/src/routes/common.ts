/** What every route module gets, and the responses they share. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../pipeline/types.ts";
import { ErrorBody } from "../schemas.ts";

export type App = OpenAPIHono<AppEnv>;

export interface RouteDeps {
  /** Uploads beyond this many bytes get 413. */
  maxUploadBytes: number;
  /** Private scratch space for streamed files (0700). */
  tmpDir: string;
  /** An error as the SSE `error` event carries it (logged when it is ours). */
  describeError(c: Context<AppEnv>, err: unknown): { code: string; message: string };
}

const error = (description: string) => ({ description, content: { "application/json": { schema: ErrorBody } } });

/** The error answers any /v1 route can give. */
export const ERRORS = {
  400: error("Invalid argument (the field is named)"),
  401: error("Missing or unknown API key"),
  403: error("The key lacks the route's scope"),
  404: error("Not found (another organisation's objects are not found either)"),
  429: error("Rate limited (Retry-After)"),
  500: error("Internal error"),
  503: error("The engine or the sandbox's agent is unavailable"),
} as const;

export const CONFLICT = { 409: error("Conflict, or the sandbox is not running") } as const;
export const TOO_LARGE = { 413: error("Payload too large") } as const;

export const json = <T>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
