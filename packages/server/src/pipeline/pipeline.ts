/**
 * The request pipeline: the one choke point every /v1 route passes through (design/style.md
 * 9-10). Handlers never check keys, scopes or organisations themselves:
 *
 *   authenticate (every /v1 request)   Bearer key -> Principal { orgId, keyId, scopes, sandboxId? },
 *                                      failures rate-limited per client address; sets `tenant`,
 *                                      the organisation's view of Kiln that routes call
 *   ROUTE_STEPS (per route, in order)  each route declares a RoutePolicy; v1Route() attaches the
 *                                      steps (and the bearer security the OpenAPI document shows);
 *                                      test/openapi.test.ts walks the document and fails on any
 *                                      /v1 route registered another way
 *
 * The steps, outermost first: audit (records every changing call and every denied one, with its
 * outcome and status, after the rest has run; then queues the webhook event of a successful
 * call), authorize (scope; a sandbox-restricted key reaches only its sandbox's routes),
 * admission (the hook, before the actions of ADMISSION_ACTIONS; may patch a create's body),
 * network (the organisation's default for a create, its ceiling for a create or network update),
 * quota (reserves room for a create or a start atomically, until the call ends). Each reads the
 * route's RoutePolicy.
 */
import { randomUUID } from "node:crypto";
import type { RouteConfig } from "@hono/zod-openapi";
import type { AuditAction } from "@kiln/core/vocabulary";
import type { Context, MiddlewareHandler, Next } from "hono";
import { auditDetail } from "../audit/detail.ts";
import { POLICY_ACTION, POLICY_SCOPE } from "../docs/http-reference.ts";
import { HttpError, mapError } from "../errors.ts";
import { ADMISSION_ACTIONS } from "../hooks/admission.ts";
import { EVENT_OF_ACTION } from "../hooks/webhooks.ts";
import type { KeyRow, NetworkPolicy } from "../store/store.ts";
import { describePolicy, withinCeiling } from "../tenancy/network-ceiling.ts";
import { OrgScope } from "../tenancy/org-scope.ts";
import type { Shape } from "../tenancy/quotas.ts";
import { KeyHasher } from "./keys.ts";
import { hasScope, type Principal, type Scope } from "./principal.ts";
import type { FailureLimiter } from "./rate-limit.ts";
import type { Services } from "./services.ts";
import { Sessions } from "./sessions.ts";
import type { Tickets } from "./tickets.ts";
import type { AppEnv } from "./types.ts";

export interface RoutePolicy {
  /** The scope a key needs for this route. */
  scope: Scope;
  /**
   * The audit action (one of @kiln/core/vocabulary's AUDIT_ACTIONS: sandbox.create, sandbox.exec,
   * pty.open, process.start, network.update, ...). A route that changes something (any method but
   * GET) is audited on every call, a read only when it is denied. @default "<METHOD> <route path>"
   */
  action?: AuditAction;
  /** Reserve quota room before the handler runs: a create, or a start of a stopped sandbox. */
  quota?: "create" | "start";
}

export type Step = (c: Context<AppEnv>, policy: RoutePolicy, next: Next) => Promise<void>;

/** The sandbox a route's path names (/v1/sandboxes/{id|idOrName}…), if any. */
function sandboxParam(c: Context<AppEnv>): string | undefined {
  if (!c.req.routePath.startsWith("/v1/sandboxes/:")) return undefined;
  const params = c.req.param() as Record<string, string>;
  return params.id ?? params.idOrName;
}

/** The request's JSON body as sent (cached: the route's validator reads the same), or undefined. */
async function jsonBody(c: Context<AppEnv>): Promise<unknown> {
  // A file upload streams (routes/files.ts), whatever Content-Type it claims: never read it here.
  if (c.req.method === "PUT" && c.req.path.endsWith("/files")) return undefined;
  if (!(c.req.header("content-type") ?? "").includes("json")) return undefined;
  return c.req.json().catch(() => undefined);
}

/**
 * The JSON answer the route gave: the object it passed to c.json (see audit), else read from a
 * clone of the response. Cloning tees the body into a web stream, which the Node adapter then
 * writes chunk by chunk instead of as one string (measured: ~3 ms more per create answer).
 */
async function responseJson(c: Context<AppEnv>, answered: unknown): Promise<Record<string, unknown> | undefined> {
  if (typeof answered === "object" && answered !== null && !Array.isArray(answered)) {
    return answered as Record<string, unknown>;
  }
  if (!(c.res.headers.get("content-type") ?? "").includes("application/json")) return undefined;
  return (await c.res
    .clone()
    .json()
    .catch(() => undefined)) as Record<string, unknown> | undefined;
}

const audit: Step = async (c, policy, next) => {
  const started = performance.now();
  const { services: s, principal: p, tenant } = c.var;
  const action = policy.action ?? `${c.req.method} ${c.req.routePath}`;
  const changes = c.req.method !== "GET" && c.req.method !== "HEAD";
  const detail = changes ? auditDetail(action, await jsonBody(c), c.req.query()) : undefined;
  const event = EVENT_OF_ACTION[action];
  // sandbox.deleted carries the sandbox as it was; fetched only when someone listens.
  let before: unknown;
  const id = sandboxParam(c);
  if (event === "sandbox.deleted" && id !== undefined && (await s.webhooks.wants(p.orgId, event))) {
    before = await tenant
      .get(id)
      .then((sandbox) => tenant.info(sandbox))
      .catch(() => undefined);
  }
  // Keep the object a route answers with c.json, so that reading it back needs no clone.
  let answered: unknown;
  const json = c.json;
  c.json = ((object: unknown, ...rest: unknown[]) => {
    answered = object;
    return (json as (...args: unknown[]) => Response)(object, ...rest);
  }) as typeof c.json;
  let thrown: unknown;
  let failed = false;
  try {
    await next();
  } catch (err) {
    thrown = err;
    failed = true;
  }
  const status = failed ? mapError(thrown).status : c.res.status;
  const outcome = status < 400 ? "ok" : status === 401 || status === 403 || status === 429 ? "denied" : "error";
  if (changes || outcome === "denied") {
    const params = c.req.param() as Record<string, string>;
    const target =
      id ?? params.id ?? params.name ?? (status === 201 ? (await responseJson(c, answered))?.id : undefined);
    // Committed after the answer is written (audit-log.ts); GET /v1/audit flushes first.
    void s.audit.record({
      at: new Date().toISOString(),
      orgId: p.orgId,
      keyId: p.keyId,
      action,
      target: typeof target === "string" ? target : null,
      ...(detail === undefined ? {} : { detail }),
      outcome,
      status,
      durationMs: Math.round(performance.now() - started),
    });
  }
  if (outcome === "ok" && event !== undefined) {
    const data = before ?? (await responseJson(c, answered));
    if (data !== undefined) {
      s.webhooks.emit(p.orgId, event, data).catch((err) => s.log(`error: webhook event ${event}: ${String(err)}`));
    }
  }
  if (failed) throw thrown;
};

/** The key's scopes cover the route; a key restricted to one sandbox reaches only that sandbox's routes. */
const authorize: Step = async (c, policy, next) => {
  const p = c.var.principal;
  if (!hasScope(p, policy.scope)) {
    throw new HttpError("FORBIDDEN", `This key lacks the scope "${policy.scope}"`);
  }
  // A restricted key may still list (its one sandbox) and get WebSocket tickets (carrying its restriction).
  const open = c.req.routePath === "/v1/sandboxes" || c.req.routePath === "/v1/tickets";
  if (p.sandboxId !== undefined && sandboxParam(c) === undefined && !open) {
    throw new HttpError("FORBIDDEN", "This key is restricted to one sandbox");
  }
  if (p.sandboxId !== undefined && c.req.routePath === "/v1/sandboxes" && c.req.method !== "GET") {
    throw new HttpError("FORBIDDEN", "This key is restricted to one sandbox: it cannot create sandboxes");
  }
  await next();
};

const admission: Step = async (c, policy, next) => {
  const hook = c.var.services.admission;
  if (hook === undefined || policy.action === undefined || !ADMISSION_ACTIONS.has(policy.action)) return next();
  const body = await jsonBody(c);
  // Not JSON: the route's validator answers 400 and nothing happens.
  if (body === undefined) return next();
  const p = c.var.principal;
  const id = sandboxParam(c);
  const sandboxId = id === undefined ? undefined : (await c.var.tenant.get(id)).id;
  const decision = await hook.check({
    action: policy.action,
    orgId: p.orgId,
    keyId: p.keyId,
    ...(sandboxId === undefined ? {} : { sandboxId }),
    request: body,
  });
  if (!decision.allow) throw new HttpError("FORBIDDEN", `Denied by the admission hook: ${decision.reason}`);
  if (decision.patch !== undefined && policy.action === "sandbox.create" && typeof body === "object" && body !== null) {
    setJsonBody(c, { ...(body as object), ...decision.patch });
  }
  await next();
};

/** Replaces the body the route's validator will read (it validates the new one like any other). */
function setJsonBody(c: Context<AppEnv>, body: unknown): void {
  (c.req as unknown as { bodyCache: Record<string, Promise<unknown>> }).bodyCache = {
    text: Promise.resolve(JSON.stringify(body)),
  };
}

/** The organisation's network default (create) and ceiling (create and network.update). */
const network: Step = async (c, policy, next) => {
  if (policy.action !== "sandbox.create" && policy.action !== "network.update") return next();
  const body = await jsonBody(c);
  if (typeof body !== "object" || body === null || Array.isArray(body)) return next();
  const org = await c.var.services.store.getOrg(c.var.principal.orgId);
  const rules = org?.network;
  if (rules === undefined) return next();
  let requested = (body as { network?: NetworkPolicy }).network;
  if (requested === undefined && policy.action === "sandbox.create" && rules.default !== undefined) {
    requested = rules.default;
    setJsonBody(c, { ...body, network: requested });
  }
  if (requested !== undefined && rules.ceiling !== undefined && !withinCeiling(requested, rules.ceiling)) {
    throw new HttpError(
      "FORBIDDEN",
      `network ${describePolicy(requested)} is wider than this organisation's ceiling ${describePolicy(rules.ceiling)}`,
    );
  }
  await next();
};

const quota: Step = async (c, policy, next) => {
  if (policy.quota === undefined) return next();
  let shape: Shape;
  let token: string;
  if (policy.quota === "create") {
    token = randomUUID();
    c.var.tenant.reservation = token;
    const body = (await jsonBody(c)) as { resources?: { cpus?: unknown; memoryMb?: unknown } } | undefined;
    const r = body?.resources;
    shape = {
      cpus: typeof r?.cpus === "number" ? r.cpus : undefined,
      memoryMb: typeof r?.memoryMb === "number" ? r.memoryMb : undefined,
    };
  } else {
    const id = sandboxParam(c);
    if (id === undefined) return next();
    const info = await c.var.tenant.info(await c.var.tenant.get(id));
    // Starting a running sandbox changes nothing.
    if (info.state === "running") return next();
    shape = { cpus: info.resources?.cpus, memoryMb: info.resources?.memoryMb };
    token = info.id;
  }
  const release = await c.var.services.quotas.reserve(c.var.principal.orgId, policy.quota, shape, token);
  try {
    await next();
  } finally {
    release();
  }
};

/** In order, outermost first; each may stop the request by throwing or wrap what follows. */
export const ROUTE_STEPS: readonly Step[] = [audit, authorize, admission, network, quota];

/**
 * Whether a step can do anything for a route of this policy; the others pass straight through
 * (each checks its policy itself too), so a route's pipeline leaves them out rather than pay
 * an async frame per request for them (a runCode: audit and authorize only).
 */
const APPLIES = new Map<Step, (policy: RoutePolicy) => boolean>([
  [admission, (p) => p.action !== undefined && ADMISSION_ACTIONS.has(p.action)],
  [network, (p) => p.action === "sandbox.create" || p.action === "network.update"],
  [quota, (p) => p.quota !== undefined],
]);

function routePipeline(policy: RoutePolicy): MiddlewareHandler<AppEnv> {
  const steps = ROUTE_STEPS.filter((step) => APPLIES.get(step)?.(policy) ?? true);
  return async (c, next) => {
    const run = async (i: number): Promise<void> => {
      const step = steps[i];
      if (step === undefined) await next();
      else await step(c, policy, () => run(i + 1));
    };
    await run(0);
  };
}

/** A /v1 route with its policy: the only way routes are declared (see app.ts). */
export function v1Route<R extends RouteConfig>(policy: RoutePolicy, route: R): R {
  return {
    ...route,
    security: [{ bearer: [] }],
    // The policy in the OpenAPI document too: the HTTP reference shows the scope a route needs,
    // and src/vocabulary.test.ts checks every route's names against the vocabulary.
    [POLICY_SCOPE]: policy.scope,
    ...(policy.action === undefined ? {} : { [POLICY_ACTION]: policy.action }),
    middleware: [routePipeline(policy), ...(route.middleware === undefined ? [] : [route.middleware].flat())],
  } as R;
}

export interface AuthDeps {
  services: Services;
  limiter: FailureLimiter;
  tickets: Tickets;
  /** The dashboard's session cookies (pipeline/sessions.ts). @default none: bearer keys and tickets only */
  sessions?: Sessions;
}

/** Resolves the caller of every /v1 request, or ends it with 401/429. */
export function authenticate(deps: AuthDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const address = c.env?.incoming?.socket?.remoteAddress ?? "unknown";
    const wait = deps.limiter.retryAfter(address);
    if (wait > 0) {
      throw new HttpError("RATE_LIMITED", `Too many failed authentications from this address: retry in ${wait} s`, {
        retryAfter: wait,
      });
    }
    const s = deps.services;
    const started = performance.now();
    const ticket = c.req.query("ticket");
    // A browser's WebSocket cannot send Authorization: it brings a one-time ticket instead.
    const authorization = c.req.header("authorization");
    // Without a header, the dashboard's session cookie stands for the key it was made with.
    const cookie = authorization === undefined && deps.sessions ? Sessions.read(c) : undefined;
    const principal =
      ticket !== undefined && authorization === undefined && isWebSocketUpgrade(c)
        ? await redeemTicket(s, deps.tickets, ticket)
        : cookie !== undefined && deps.sessions
          ? await resolveSession(s, deps.sessions, cookie)
          : await resolveKey(s, authorization);
    if (!("keyId" in principal)) {
      deps.limiter.fail(address);
      // A revoked or expired key is someone's: its use is audited in its organisation.
      if (principal.row !== undefined) {
        void s.audit.record({
          at: new Date().toISOString(),
          orgId: principal.row.orgId,
          keyId: principal.row.id,
          action: "key.use",
          target: `${c.req.method} ${c.req.path}`,
          detail: { reason: principal.row.revokedAt !== undefined ? "revoked" : "expired" },
          outcome: "denied",
          status: 401,
          durationMs: Math.round(performance.now() - started),
        });
      }
      throw new HttpError("UNAUTHORIZED", principal.message);
    }
    if (cookie !== undefined) deps.sessions?.checkCsrf(c);
    touch(s, principal.keyId);
    c.set("principal", principal);
    c.set("services", s);
    c.set("tenant", new OrgScope(s.kiln, principal, s.handles, s.store));
    await next();
  };
}

function isWebSocketUpgrade(c: Context<AppEnv>): boolean {
  return c.req.header("upgrade")?.toLowerCase() === "websocket";
}

/** A ticket's principal, as long as the key that made it still works. */
async function redeemTicket(deps: Services, tickets: Tickets, ticket: string): Promise<Principal | Refusal> {
  const principal = tickets.redeem(ticket);
  if (!principal) return { message: "Unknown, used or expired ticket: get a new one with POST /v1/tickets" };
  const row = await deps.store.getKey(principal.keyId);
  if (!row || row.revokedAt !== undefined) return { message: "The key that made this ticket was revoked" };
  if (row.expiresAt !== undefined && Date.parse(row.expiresAt) <= Date.now())
    return { message: "The key that made this ticket has expired" };
  return principal;
}

const TOUCH_EVERY_MS = 60_000;
const touched = new WeakMap<object, Map<string, number>>();

/** lastUsedAt, written at most once a minute per key and never on the request's path. */
function touch(deps: Services, keyId: string): void {
  let seen = touched.get(deps.store);
  if (!seen) {
    seen = new Map();
    touched.set(deps.store, seen);
  }
  const now = Date.now();
  if (now - (seen.get(keyId) ?? 0) < TOUCH_EVERY_MS) return;
  seen.set(keyId, now);
  deps.store.touchKey(keyId, new Date(now).toISOString()).catch(() => {});
}

export type Refusal = { message: string; row?: KeyRow };

/** The principal, or why not (a message for the 401, and the key's row when it is a known key). */
async function resolveKey(deps: Services, header: string | undefined): Promise<Principal | Refusal> {
  if (header === undefined) return { message: "Missing API key: send Authorization: Bearer <key>" };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) return { message: "Malformed Authorization header: send Authorization: Bearer <key>" };
  return resolveApiKey(deps, match[1]);
}

/** The principal of an API key (a bearer header's, or the one a dashboard signs in with), or why not. */
export async function resolveApiKey(deps: Services, key: string): Promise<Principal | Refusal> {
  if (key.length < 16 || key.length > 512) return { message: "Unknown API key" };
  const hash = deps.hasher.lookupHash(key);
  const row = await deps.store.findKeyByHash(hash);
  // The lookup is by a keyed hash the caller cannot compute; the comparison is constant-time anyway.
  if (!row || !KeyHasher.same(row.hash, hash)) return { message: "Unknown API key" };
  deps.hasher.verified(key, row.hash);
  return principalOf(row);
}

/** A session cookie's principal: the key it was made with, as long as that key still works. */
async function resolveSession(deps: Services, sessions: Sessions, cookie: string): Promise<Principal | Refusal> {
  const claims = sessions.verify(cookie);
  if (!claims) return { message: "No valid session: sign in again" };
  const row = await deps.store.getKey(claims.keyId);
  if (!row) return { message: "No valid session: sign in again" };
  return principalOf(row);
}

function principalOf(row: KeyRow): Principal | Refusal {
  const now = new Date();
  if (row.revokedAt !== undefined) return { message: "This API key was revoked", row };
  if (row.expiresAt !== undefined && Date.parse(row.expiresAt) <= now.getTime())
    return { message: "This API key has expired", row };
  return {
    orgId: row.orgId,
    keyId: row.id,
    scopes: row.scopes,
    ...(row.sandboxId === undefined ? {} : { sandboxId: row.sandboxId }),
    ...(row.expiresAt === undefined ? {} : { expiresAt: row.expiresAt }),
  };
}
