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
 * Issue 11 adds its steps to ROUTE_STEPS: admission hook (before create/exec/code), quotas
 * (before create, atomically in the store), audit (around the handler, recording outcome and
 * status), each reading the same RoutePolicy (which grows an `action` for audit and hooks).
 */
import type { RouteConfig } from "@hono/zod-openapi";
import type { Kiln } from "@kiln/core";
import type { Context, MiddlewareHandler, Next } from "hono";
import { HttpError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import type { HandleCache } from "../tenancy/handle-cache.ts";
import { OrgScope } from "../tenancy/org-scope.ts";
import { KeyHasher } from "./keys.ts";
import { hasScope, type Principal, type Scope } from "./principal.ts";
import type { FailureLimiter } from "./rate-limit.ts";
import type { Tickets } from "./tickets.ts";
import type { AppEnv } from "./types.ts";

export interface RoutePolicy {
  /** The scope a key needs for this route. */
  scope: Scope;
}

export type Step = (c: Context<AppEnv>, policy: RoutePolicy, next: Next) => Promise<void>;

/** The key's scopes cover the route. */
const authorize: Step = async (c, policy, next) => {
  if (!hasScope(c.var.principal, policy.scope)) {
    throw new HttpError("FORBIDDEN", `This key lacks the scope "${policy.scope}"`);
  }
  await next();
};

/** In order; each may stop the request by throwing or wrap what follows (see the header comment). */
export const ROUTE_STEPS: readonly Step[] = [authorize];

function routePipeline(policy: RoutePolicy): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const run = async (i: number): Promise<void> => {
      const step = ROUTE_STEPS[i];
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
    middleware: [routePipeline(policy), ...(route.middleware === undefined ? [] : [route.middleware].flat())],
  } as R;
}

export interface AuthDeps {
  store: Store;
  hasher: KeyHasher;
  limiter: FailureLimiter;
  kiln: Kiln;
  tickets: Tickets;
  handles: HandleCache;
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
    const ticket = c.req.query("ticket");
    // A browser's WebSocket cannot send Authorization: it brings a one-time ticket instead.
    const principal =
      ticket !== undefined && c.req.header("authorization") === undefined && isWebSocketUpgrade(c)
        ? await redeemTicket(deps, ticket)
        : await resolveKey(deps, c.req.header("authorization"));
    if (typeof principal === "string") {
      deps.limiter.fail(address);
      throw new HttpError("UNAUTHORIZED", principal);
    }
    touch(deps, principal.keyId);
    c.set("principal", principal);
    c.set("tenant", new OrgScope(deps.kiln, principal, deps.handles));
    await next();
  };
}

function isWebSocketUpgrade(c: Context<AppEnv>): boolean {
  return c.req.header("upgrade")?.toLowerCase() === "websocket";
}

/** A ticket's principal, as long as the key that made it still works. */
async function redeemTicket(deps: AuthDeps, ticket: string): Promise<Principal | string> {
  const principal = deps.tickets.redeem(ticket);
  if (!principal) return "Unknown, used or expired ticket: get a new one with POST /v1/tickets";
  const row = await deps.store.getKey(principal.keyId);
  if (!row || row.revokedAt !== undefined) return "The key that made this ticket was revoked";
  if (row.expiresAt !== undefined && Date.parse(row.expiresAt) <= Date.now())
    return "The key that made this ticket has expired";
  return principal;
}

const TOUCH_EVERY_MS = 60_000;
const touched = new WeakMap<Store, Map<string, number>>();

/** lastUsedAt, written at most once a minute per key and never on the request's path. */
function touch(deps: AuthDeps, keyId: string): void {
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

/** The principal, or why not (a message for the 401). */
async function resolveKey(deps: AuthDeps, header: string | undefined): Promise<Principal | string> {
  if (header === undefined) return "Missing API key: send Authorization: Bearer <key>";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) return "Malformed Authorization header: send Authorization: Bearer <key>";
  const key = match[1];
  if (key.length < 16 || key.length > 512) return "Unknown API key";
  const hash = deps.hasher.hash(key);
  const row = await deps.store.findKeyByHash(hash);
  // The lookup is by a keyed hash the caller cannot compute; the comparison is constant-time anyway.
  if (!row || !KeyHasher.same(row.hash, hash)) return "Unknown API key";
  const now = new Date();
  if (row.revokedAt !== undefined) return "This API key was revoked";
  if (row.expiresAt !== undefined && Date.parse(row.expiresAt) <= now.getTime()) return "This API key has expired";
  return {
    orgId: row.orgId,
    keyId: row.id,
    scopes: row.scopes,
    ...(row.sandboxId === undefined ? {} : { sandboxId: row.sandboxId }),
  };
}
