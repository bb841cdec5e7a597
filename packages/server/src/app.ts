/**
 * The HTTP application: the pipeline, every route, the one error mapping, the OpenAPI
 * document. No sandbox logic here or in routes/: they parse, call the organisation's view of
 * Kiln (tenancy/), and answer.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Kiln } from "@kiln/core";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { HttpError, mapError } from "./errors.ts";
import { jsonBodyLimit } from "./pipeline/body-limit.ts";
import { authenticate } from "./pipeline/pipeline.ts";
import type { FailureLimiter } from "./pipeline/rate-limit.ts";
import type { Services } from "./pipeline/services.ts";
import { Sessions } from "./pipeline/sessions.ts";
import type { Tickets } from "./pipeline/tickets.ts";
import type { AppEnv } from "./pipeline/types.ts";
import { adminRoutes } from "./routes/admin.ts";
import { json } from "./routes/common.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { docsRoutes } from "./routes/docs.ts";
import { fileRoutes } from "./routes/files.ts";
import { imageRoutes } from "./routes/images.ts";
import { McpHttpSessions, mcpRoutes } from "./routes/mcp.ts";
import { networkRoutes } from "./routes/network.ts";
import { runRoutes } from "./routes/run.ts";
import { sandboxRoutes } from "./routes/sandboxes.ts";
import { isPublicSessionCall, sessionRoutes } from "./routes/session.ts";
import { storageRoutes } from "./routes/storage.ts";
import { terminalRoutes } from "./routes/terminals.ts";
import { Health } from "./schemas.ts";

/** JSON bodies larger than this are refused with 413 (exec stdin and code are capped at 8 MiB each). */
export const MAX_JSON_BODY_BYTES = 16 * 1024 * 1024;
/** How long /healthz waits for the engine before calling it unavailable. */
const HEALTH_ENGINE_TIMEOUT_MS = 2_000;
export const OPENAPI_PATH = "/v1/openapi.json";

export interface AppDeps {
  services: Services;
  limiter: FailureLimiter;
  tickets: Tickets;
  maxUploadBytes: number;
  tmpDir: string;
  version: string;
  log: (line: string) => void;
  /** MCP sessions of /mcp (the server ends them on close). @default new McpHttpSessions() */
  mcp?: McpHttpSessions;
  /** The built documentation site served at /docs. @default docs-site/ at the repository's root */
  docsDir?: string;
  /** Signs the dashboard's session cookies (derived from the server secret); publicUrl: KILN_PUBLIC_URL. */
  sessionKey: Buffer;
  publicUrl?: string;
}

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    // Every request schema failure becomes a 400 naming the first offending field.
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const keys = issue && "keys" in issue && Array.isArray(issue.keys) ? issue.keys : [];
      const path = [...(issue?.path ?? []), ...(keys.length > 0 ? [keys[0]] : [])].map(String);
      const field = path.length > 0 ? path.join(".") : result.target === "json" ? "body" : result.target;
      const message = issue?.code === "unrecognized_keys" ? "unknown field" : (issue?.message ?? "invalid");
      throw new HttpError("INVALID_ARGUMENT", `${field}: ${message}`, { field });
    },
  });

  const fail = (c: Context<AppEnv>, err: unknown) => {
    const mapped = mapError(translate(err), (m) => c.var.tenant?.scrub(m) ?? m);
    // A client that went away aborts its call: nobody reads the answer, and it is not a fault.
    if (mapped.internal && !c.req.raw.signal.aborted)
      deps.log(`error: ${c.req.method} ${c.req.path}: ${(err as Error)?.stack ?? String(err)}`);
    return mapped;
  };

  // One access-log line per request (the audit log of issue 11 is a separate, durable record).
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    const key = c.var.principal?.keyId ?? "-";
    deps.log(`${c.req.method} ${c.req.path} ${c.res.status} ${Math.round(performance.now() - started)}ms ${key}`);
  });

  app.onError((err, c) => {
    const mapped = fail(c, err);
    for (const [k, v] of Object.entries(mapped.headers)) c.header(k, v);
    return c.json(mapped.body, mapped.status as 400);
  });
  app.notFound((c) => c.json({ error: { code: "NOT_FOUND", message: `No route ${c.req.method} ${c.req.path}` } }, 404));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "An API key: kiln_...",
  });
  // Generated once, on first request: every route is registered by then.
  let document: unknown;
  app.get(OPENAPI_PATH, (c) => {
    document ??= app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "Kiln",
        version: deps.version,
        description: "Sandboxes for AI-generated code, as a service. Errors: { error: { code, message, field? } }.",
      },
    });
    return c.json(document);
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      tags: ["health"],
      summary: "Liveness and the engine's state (no authentication)",
      responses: { 200: json(Health, "Up") },
    }),
    async (c) => {
      const engine = await engineAnswers(deps.services.kiln);
      return c.json(
        { status: "ok" as const, engine: engine ? ("ok" as const) : ("unavailable" as const), version: deps.version },
        200,
      );
    },
  );

  const sessions = new Sessions(deps.sessionKey, deps.publicUrl === undefined ? {} : { publicUrl: deps.publicUrl });
  const auth = authenticate({ services: deps.services, limiter: deps.limiter, tickets: deps.tickets, sessions });
  app.use("/v1/*", async (c, next) => {
    if (c.req.path === OPENAPI_PATH || isPublicSessionCall(c)) return next();
    return auth(c, next);
  });
  // File uploads stream with their own limit (routes/files.ts); every other body is small JSON.
  const jsonLimit = jsonBodyLimit(MAX_JSON_BODY_BYTES, () => {
    throw new HttpError("PAYLOAD_TOO_LARGE", `JSON bodies are limited to ${MAX_JSON_BODY_BYTES} bytes`);
  });
  app.use("/v1/*", async (c, next) =>
    (c.req.method === "PUT" && c.req.path.endsWith("/files")) ||
    (c.req.method === "POST" && c.req.path.endsWith("/stdin")) // live exec stdin streams too (routes/run.ts)
      ? next()
      : jsonLimit(c, next),
  );

  const routeDeps = {
    maxUploadBytes: deps.maxUploadBytes,
    tmpDir: deps.tmpDir,
    describeError: (c: Context<AppEnv>, err: unknown) => {
      const { body } = fail(c, err);
      return { code: body.error.code, message: body.error.message };
    },
  };
  sandboxRoutes(app);
  networkRoutes(app);
  runRoutes(app, routeDeps);
  fileRoutes(app, routeDeps);
  storageRoutes(app);
  adminRoutes(app);
  imageRoutes(app, { ...routeDeps, kiln: deps.services.kiln });
  terminalRoutes(app, { ...routeDeps, tickets: deps.tickets });
  mcpRoutes(app, auth, deps.mcp ?? new McpHttpSessions(), deps.services.audit);
  docsRoutes(app, { dir: deps.docsDir, openApiPath: OPENAPI_PATH });
  sessionRoutes(app, { services: deps.services, limiter: deps.limiter, sessions });
  dashboardRoutes(app); // last: it answers the GETs no other route does
  return app;
}

/** Hono's own exceptions (unparsable JSON, a wrong Content-Type) in the API's terms. */
function translate(err: unknown): unknown {
  if (!(err instanceof HTTPException)) return err;
  if (err.status === 415) {
    return new HttpError("INVALID_ARGUMENT", "Content-Type must be application/json", { field: "content-type" });
  }
  if (err.status === 400) return new HttpError("INVALID_ARGUMENT", `body: ${err.message}`, { field: "body" });
  if (err.status === 413) return new HttpError("PAYLOAD_TOO_LARGE", err.message);
  return err;
}

async function engineAnswers(kiln: Kiln): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), HEALTH_ENGINE_TIMEOUT_MS);
  });
  // One cheap engine call through core's public API (a label-filtered volume list).
  const probe = kiln.volumes.list().then(
    () => true,
    () => false,
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
