/**
 * The dashboard's sign-in: `POST /v1/session` trades an API key for an HttpOnly session cookie
 * (pipeline/sessions.ts), `GET /v1/session` says who the caller is (cookie or bearer key),
 * `DELETE /v1/session` signs out. POST and DELETE are public (they run before any session
 * exists, or after it ended); GET goes through the pipeline's authentication like every /v1 route.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HttpError } from "../errors.ts";
import { type Refusal, resolveApiKey } from "../pipeline/pipeline.ts";
import type { Principal } from "../pipeline/principal.ts";
import type { FailureLimiter } from "../pipeline/rate-limit.ts";
import type { Services } from "../pipeline/services.ts";
import { CSRF_HEADER, SESSION_COOKIE, Sessions } from "../pipeline/sessions.ts";
import type { AppEnv } from "../pipeline/types.ts";
import { type App, ERRORS, json } from "./common.ts";

export const SESSION_PATH = "/v1/session";

const SessionBody = z
  .object({
    apiKey: z.string().min(1).max(512).openapi({
      description: "An API key (kiln_...). It is checked like a bearer key and never stored in the cookie",
    }),
  })
  .strict()
  .openapi("SessionRequest");

const SessionInfo = z
  .object({
    org: z.object({ id: z.string(), name: z.string() }),
    key: z.object({ id: z.string(), name: z.string(), prefix: z.string() }),
    scopes: z.array(z.string()),
    sandboxId: z.string().optional().openapi({ description: "Set when the key reaches one sandbox only" }),
    expiresAt: z.string().optional().openapi({ description: "When the session (or its key) ends" }),
    via: z.enum(["session", "bearer", "ticket"]).openapi({ description: "How this request was authenticated" }),
  })
  .openapi("SessionInfo");

export interface SessionDeps {
  services: Services;
  limiter: FailureLimiter;
  sessions: Sessions;
}

/** The calls that run without authentication: signing in and signing out. */
export function isPublicSessionCall(c: Context): boolean {
  return c.req.path === SESSION_PATH && (c.req.method === "POST" || c.req.method === "DELETE");
}

export function sessionRoutes(app: App, deps: SessionDeps): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: SESSION_COOKIE,
    description: `The dashboard's session (POST ${SESSION_PATH}). Cookie-authenticated requests that change something need a same-origin Origin and ${CSRF_HEADER}: 1 (403 FORBIDDEN otherwise); every /v1 route accepts it in place of the bearer key`,
  });

  app.openapi(
    createRoute({
      method: "post",
      path: SESSION_PATH,
      tags: ["session"],
      summary: `Sign in (the dashboard): checks the key like a bearer key and sets the HttpOnly cookie ${SESSION_COOKIE}`,
      description: `No authentication. Send a same-origin Origin (or Sec-Fetch-Site: same-origin) and ${CSRF_HEADER}: 1. Failures count toward the per-address limit of failed authentications.`,
      security: [],
      request: { body: { required: true, content: { "application/json": { schema: SessionBody } } } },
      responses: {
        200: json(SessionInfo, "Signed in; Set-Cookie carries the session"),
        ...ERRORS,
      },
    }),
    async (c) => {
      const address = c.env?.incoming?.socket?.remoteAddress ?? "unknown";
      const wait = deps.limiter.retryAfter(address);
      if (wait > 0) {
        throw new HttpError("RATE_LIMITED", `Too many failed authentications from this address: retry in ${wait} s`, {
          retryAfter: wait,
        });
      }
      deps.sessions.checkCsrf(c);
      const started = performance.now();
      const principal: Principal | Refusal = await resolveApiKey(deps.services, c.req.valid("json").apiKey);
      if (!("keyId" in principal)) {
        deps.limiter.fail(address);
        throw new HttpError("UNAUTHORIZED", principal.message);
      }
      const row = await deps.services.store.getKey(principal.keyId);
      if (!row) throw new HttpError("UNAUTHORIZED", "Unknown API key");
      const session = deps.sessions.issue(row);
      c.header("set-cookie", deps.sessions.cookie(c, session));
      c.header("cache-control", "no-store");
      void deps.services.audit.record({
        at: new Date().toISOString(),
        orgId: principal.orgId,
        keyId: principal.keyId,
        action: "session.create",
        target: principal.keyId,
        outcome: "ok",
        status: 200,
        durationMs: Math.round(performance.now() - started),
      });
      return c.json(
        await describe(deps.services, principal, "session", new Date(session.expiresAt).toISOString()),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: SESSION_PATH,
      tags: ["session"],
      summary: "Who am I: the caller's organisation, key and scopes (session cookie or bearer key)",
      security: [{ bearer: [] }, { session: [] }],
      responses: { 200: json(SessionInfo, "The caller"), ...ERRORS },
    }),
    async (c: Context<AppEnv>) => {
      const cookie = c.req.header("authorization") === undefined ? Sessions.read(c) : undefined;
      const claims = cookie === undefined ? undefined : deps.sessions.verify(cookie);
      const via = claims ? "session" : c.req.header("authorization") === undefined ? "ticket" : "bearer";
      const until = claims ? new Date(claims.expiresAt).toISOString() : c.var.principal.expiresAt;
      c.header("cache-control", "no-store");
      return c.json(await describe(c.var.services, c.var.principal, via, until), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: SESSION_PATH,
      tags: ["session"],
      summary: "Sign out: ends the session and clears the cookie (no authentication; 204 even without a session)",
      security: [],
      responses: { 204: { description: "Signed out" }, 403: ERRORS[403] },
    }),
    async (c) => {
      const claims = deps.sessions.verify(Sessions.read(c));
      if (claims) {
        deps.sessions.checkCsrf(c);
        deps.sessions.end(claims);
      }
      c.header("set-cookie", deps.sessions.cookie(c));
      return c.body(null, 204);
    },
  );
}

async function describe(
  services: Services,
  principal: Principal,
  via: "session" | "bearer" | "ticket",
  expiresAt: string | undefined,
): Promise<z.infer<typeof SessionInfo>> {
  const [row, org] = await Promise.all([
    services.store.getKey(principal.keyId),
    services.store.getOrg(principal.orgId),
  ]);
  return {
    org: { id: principal.orgId, name: org?.name ?? principal.orgId },
    key: { id: principal.keyId, name: row?.name ?? "", prefix: row?.prefix ?? "" },
    scopes: [...principal.scopes],
    ...(principal.sandboxId === undefined ? {} : { sandboxId: principal.sandboxId }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    via,
  };
}
