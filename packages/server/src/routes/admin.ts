/**
 * Organisations, API keys, the audit log and webhooks (design/server.md). Scopes, the audit
 * record and organisation scoping come from the pipeline like every route's; what is decided
 * here is what the body asks for: which organisation a new key belongs to and that it holds no
 * more power than the key that makes it (tenancy/key-policy.ts).
 */
import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import { ConflictError } from "@kiln/core";
import { type AuditAction, SCOPE_INFO, WEBHOOK_EVENT_INFO } from "@kiln/core/vocabulary";
import type { Context } from "hono";
import { HttpError } from "../errors.ts";
import { refuseHookUrl } from "../hooks/private-address.ts";
import { newWebhookSecret, WEBHOOK_EVENTS } from "../hooks/webhooks.ts";
import { keyDisplayPrefix, newId, newKey } from "../pipeline/keys.ts";
import { v1Route } from "../pipeline/pipeline.ts";
import { hasScope, SCOPES, type Scope } from "../pipeline/principal.ts";
import type { AppEnv } from "../pipeline/types.ts";
import { Network } from "../schemas.ts";
import type { KeyRow, OrgNetwork as OrgNetworkRules, OrgRow, Store } from "../store/store.ts";
import { checkMint, checkPower } from "../tenancy/key-policy.ts";
import { withinCeiling } from "../tenancy/network-ceiling.ts";
import { OrgScope } from "../tenancy/org-scope.ts";
import { type App, CONFLICT, ERRORS, json } from "./common.ts";

const Quota = z.number().int().min(0).max(1_000_000);
const Quotas = z
  .strictObject({
    maxSandboxes: Quota.optional(),
    maxCpus: Quota.optional(),
    maxMemoryMb: Quota.optional(),
    createsPerMinute: Quota.optional(),
  })
  .openapi("Quotas", { example: { maxSandboxes: 5, maxCpus: 8, maxMemoryMb: 16384, createsPerMinute: 30 } });
const QuotasUpdate = z
  .strictObject({
    maxSandboxes: Quota.nullable().optional(),
    maxCpus: Quota.nullable().optional(),
    maxMemoryMb: Quota.nullable().optional(),
    createsPerMinute: Quota.nullable().optional(),
  })
  .openapi("QuotasUpdate", { description: "Each given limit replaces the old one; null removes it" });
const OrgNetwork = z
  .strictObject({ default: Network.nullable().optional(), ceiling: Network.nullable().optional() })
  .openapi("OrgNetwork", {
    description:
      "default: what a create without network gets; ceiling: the widest policy a key may give a sandbox (none < allow-list < egress). null removes it",
  });
const Org = z
  .object({
    id: z.string(),
    name: z.string(),
    quotas: Quotas,
    network: z.object({ default: Network.optional(), ceiling: Network.optional() }).optional(),
    createdAt: z.string(),
  })
  .openapi("Org");
const OrgBody = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and - (at most 63)")
    .openapi({ example: "acme" }),
  quotas: Quotas.optional(),
  network: OrgNetwork.optional(),
});
/** "`name`: what it means; …" of a vocabulary list, for the OpenAPI document. */
const described = (info: Record<string, string | { description: string }>) =>
  Object.entries(info)
    .map(([name, v]) => `\`${name}\`: ${typeof v === "string" ? v : v.description}`)
    .join("; ");
const ScopeName = z.enum(SCOPES).openapi({ description: described(SCOPE_INFO) });
const KeyBody = z.strictObject({
  name: z.string().min(1).max(128).openapi({ example: "ci" }),
  scopes: z.array(ScopeName).max(SCOPES.length),
  orgId: z.string().min(1).max(128).optional(),
  sandboxId: z.string().min(1).max(128).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});
const KeyInfo = z
  .object({
    id: z.string(),
    name: z.string(),
    orgId: z.string(),
    prefix: z.string(),
    scopes: z.array(z.string()),
    sandboxId: z.string().optional(),
    expiresAt: z.string().optional(),
    createdAt: z.string(),
    revokedAt: z.string().optional(),
    lastUsedAt: z.string().optional(),
  })
  .openapi("ApiKey");
const CreatedKey = KeyInfo.extend({ key: z.string().openapi({ description: "Shown in this answer only" }) }).openapi(
  "CreatedApiKey",
);
const AuditEventSchema = z
  .object({
    id: z.number().int(),
    at: z.string(),
    orgId: z.string(),
    keyId: z.string().nullable(),
    action: z.string().openapi({
      description: "One of @kiln/core/vocabulary's AUDIT_ACTIONS, or `<METHOD> <route path>` for a refused read",
      example: "sandbox.create",
    }),
    target: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()).optional(),
    outcome: z.string().openapi({ description: "ok, denied or error" }),
    status: z.number().int(),
    durationMs: z.number().int(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi("AuditEvent");
const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  after: z.coerce.number().int().min(0).optional(),
});
const WebhookBody = z.strictObject({
  url: z.string().min(1).max(2048).openapi({ example: "https://example.com/kiln" }),
  events: z
    .array(z.enum(WEBHOOK_EVENTS).openapi({ description: described(WEBHOOK_EVENT_INFO) }))
    .min(1)
    .max(WEBHOOK_EVENTS.length),
});
const Webhook = z
  .object({ id: z.string(), url: z.string(), events: z.array(z.string()), createdAt: z.string() })
  .openapi("Webhook");
const CreatedWebhook = Webhook.extend({
  secret: z.string().openapi({ description: "whsec_…: shown in this answer only" }),
}).openapi("CreatedWebhook");
const Delivery = z
  .object({
    id: z.string(),
    event: z.string(),
    status: z.enum(["pending", "delivered", "failed"]),
    attempts: z.number().int(),
    lastError: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("WebhookDelivery");
const IdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "id", in: "path" } }),
});
const KeysQuery = z.object({ orgId: z.string().min(1).max(128).optional() });

/** A /v1 route of this module: method and path, the scope it needs, its audit action, its OpenAPI tag. */
const route = <
  const M extends RouteConfig["method"],
  const P extends string,
  const R extends Omit<RouteConfig, "method" | "path" | "tags">,
>(
  method: M,
  path: P,
  scope: Scope,
  action: AuditAction,
  tag: "tenancy" | "webhooks",
  spec: R,
) => v1Route({ scope, action }, createRoute({ method, path, tags: [tag], ...spec }));
/** A required JSON request body. */
const jsonBody = <T>(schema: T) => ({ required: true as const, content: { "application/json": { schema } } });

/** `current` with `change` applied: a null removes its key, undefined keeps it, a value replaces it. */
function patched<T extends object>(current: T, change: { [K in keyof T]?: T[K] | null }): T {
  const next = { ...current };
  for (const k of Object.keys(change) as (keyof T)[]) {
    const v = change[k];
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v as T[keyof T];
  }
  return next;
}

const orgView = (o: OrgRow) => ({
  id: o.id,
  name: o.name,
  quotas: o.quotas,
  ...(o.network === undefined ? {} : { network: o.network }),
  createdAt: o.createdAt,
});

/** The network rules with nulls dropped; the default must be within the ceiling. */
function networkRules(current: OrgNetworkRules | undefined, change: z.infer<typeof OrgNetwork>): OrgNetworkRules {
  const next = patched<OrgNetworkRules>(current ?? {}, change);
  if (next.default !== undefined && next.ceiling !== undefined && !withinCeiling(next.default, next.ceiling)) {
    throw new HttpError("INVALID_ARGUMENT", "network.default: must be within network.ceiling", {
      field: "network.default",
    });
  }
  return next;
}
const keyView = (k: KeyRow) => {
  const { hash: _hash, ...rest } = k;
  return rest;
};

/** The key's organisation unless an orgs:admin key names another (that must exist). */
async function targetOrg(c: Context<AppEnv>, orgId: string | undefined): Promise<string> {
  const p = c.var.principal;
  if (orgId === undefined || orgId === p.orgId) return p.orgId;
  if (!hasScope(p, "orgs:admin"))
    throw new HttpError("FORBIDDEN", "Only an orgs:admin key may name another organisation");
  return (await existingOrg(c, orgId)).id;
}

/** The organisation `id` (orgs:admin routes), else 404. */
async function existingOrg(c: Context<AppEnv>, id: string): Promise<OrgRow> {
  const org = await c.var.services.store.getOrg(id);
  if (!org) throw new HttpError("NOT_FOUND", `No organisation "${id}"`);
  return org;
}

/** A key the caller may see: its own organisation's, or any with orgs:admin; else 404. */
async function visibleKey(c: Context<AppEnv>, id: string): Promise<KeyRow> {
  const key = await c.var.services.store.getKey(id);
  const p = c.var.principal;
  if (!key || (key.orgId !== p.orgId && !hasScope(p, "orgs:admin"))) {
    throw new HttpError("NOT_FOUND", `No key "${id}"`);
  }
  return key;
}

export function adminRoutes(app: App): void {
  app.openapi(
    route("post", "/v1/orgs", "orgs:admin", "org.create", "tenancy", {
      summary: "Create an organisation (orgs:admin)",
      request: { body: jsonBody(OrgBody) },
      responses: { 201: json(Org, "The organisation"), ...ERRORS, ...CONFLICT },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const store = c.var.services.store;
      if ((await store.listOrgs()).some((o) => o.name === body.name)) {
        throw new ConflictError(`An organisation named "${body.name}" already exists`);
      }
      const network = body.network === undefined ? undefined : networkRules(undefined, body.network);
      const org: OrgRow = {
        id: newId("org"),
        name: body.name,
        quotas: (body.quotas ?? {}) as Record<string, number>,
        ...(network === undefined || Object.keys(network).length === 0 ? {} : { network }),
        createdAt: new Date().toISOString(),
      };
      await store.createOrg(org);
      return c.json(orgView(org), 201);
    },
  );

  app.openapi(
    route("get", "/v1/orgs", "orgs:admin", "org.list", "tenancy", {
      summary: "Every organisation (orgs:admin)",
      responses: { 200: json(z.object({ orgs: z.array(Org) }), "Organisations"), ...ERRORS },
    }),
    async (c) => c.json({ orgs: (await c.var.services.store.listOrgs()).map(orgView) }, 200),
  );

  /** PUT /v1/orgs/{id}/<part> (orgs:admin): `change` stores the body's change, and gives the new row. */
  const orgPart = <S extends z.ZodType>(
    part: "quotas" | "network",
    summary: string,
    schema: S,
    change: (store: Store, org: OrgRow, body: z.infer<S>) => Promise<OrgRow>,
  ) =>
    app.openapi(
      route("put", `/v1/orgs/{id}/${part}`, "orgs:admin", `org.${part}`, "tenancy", {
        summary,
        request: { params: IdParam, body: jsonBody<z.ZodType>(schema) },
        responses: { 200: json(Org, "The organisation"), ...ERRORS },
      }),
      async (c) => {
        const org = await existingOrg(c, c.req.valid("param").id);
        return c.json(orgView(await change(c.var.services.store, org, c.req.valid("json") as z.infer<S>)), 200);
      },
    );

  orgPart("quotas", "Change an organisation's quotas (orgs:admin)", QuotasUpdate, async (store, org, body) => {
    const quotas = patched<Record<string, number>>(org.quotas, body);
    await store.setOrgQuotas(org.id, quotas);
    return { ...org, quotas };
  });

  orgPart(
    "network",
    "Set an organisation's network default and ceiling (orgs:admin)",
    OrgNetwork,
    async (store, org, body) => {
      const network = networkRules(org.network, body);
      await store.setOrgNetwork(org.id, network);
      const { network: _old, ...rest } = org;
      return Object.keys(network).length === 0 ? rest : { ...rest, network };
    },
  );

  app.openapi(
    route("post", "/v1/keys", "keys:write", "key.create", "tenancy", {
      summary: "Make an API key (its secret is in this answer only)",
      request: { body: jsonBody(KeyBody) },
      responses: { 201: json(CreatedKey, "The key, with its secret"), ...ERRORS },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const s = c.var.services;
      const orgId = await targetOrg(c, body.orgId);
      let sandboxId: string | undefined;
      if (body.sandboxId !== undefined) {
        // The sandbox must be the target organisation's; stored by its full id.
        const scope = new OrgScope(s.kiln, { orgId, keyId: c.var.principal.keyId, scopes: [] }, s.handles, s.store);
        sandboxId = (await scope.get(body.sandboxId)).id;
      }
      const wanted = checkMint(c.var.principal, {
        orgId,
        scopes: body.scopes,
        ...(sandboxId === undefined ? {} : { sandboxId }),
        ...(body.expiresAt === undefined ? {} : { expiresAt: new Date(body.expiresAt).toISOString() }),
      });
      const key = newKey();
      const row: KeyRow = {
        id: newId("key"),
        orgId,
        name: body.name,
        prefix: keyDisplayPrefix(key),
        hash: s.hasher.hash(key),
        scopes: wanted.scopes,
        ...(wanted.sandboxId === undefined ? {} : { sandboxId: wanted.sandboxId }),
        ...(wanted.expiresAt === undefined ? {} : { expiresAt: wanted.expiresAt }),
        createdAt: new Date().toISOString(),
      };
      await s.store.createKey(row);
      return c.json({ ...keyView(row), key }, 201);
    },
  );

  app.openapi(
    route("get", "/v1/keys", "keys:write", "key.list", "tenancy", {
      summary: "The organisation's keys (never a secret or hash); orgs:admin may pass ?orgId=",
      request: { query: KeysQuery },
      responses: { 200: json(z.object({ keys: z.array(KeyInfo) }), "Keys"), ...ERRORS },
    }),
    async (c) => {
      const orgId = await targetOrg(c, c.req.valid("query").orgId);
      return c.json({ keys: (await c.var.services.store.listKeys(orgId)).map(keyView) }, 200);
    },
  );

  app.openapi(
    route("delete", "/v1/keys/{id}", "keys:write", "key.revoke", "tenancy", {
      summary: "Revoke a key: its next request is refused",
      request: { params: IdParam },
      responses: { 204: { description: "Revoked" }, ...ERRORS },
    }),
    async (c) => {
      const key = await visibleKey(c, c.req.valid("param").id);
      checkPower(c.var.principal, key, "revoke");
      await c.var.services.store.revokeKey(key.id, new Date().toISOString());
      return c.body(null, 204);
    },
  );

  app.openapi(
    route("get", "/v1/audit", "audit:read", "audit.list", "tenancy", {
      summary: "The organisation's audit events in chain order: the newest `limit`, or those after `after`",
      request: { query: AuditQuery },
      responses: { 200: json(z.object({ events: z.array(AuditEventSchema) }), "Audit events"), ...ERRORS },
    }),
    async (c) => {
      const q = c.req.valid("query");
      // Events of answered calls may still be on their way to the store (audit-log.ts).
      await c.var.services.audit.flush();
      const events = await c.var.services.store.listAudit(c.var.principal.orgId, {
        limit: q.limit ?? 100,
        ...(q.after === undefined ? {} : { after: q.after }),
      });
      return c.json({ events }, 200);
    },
  );

  app.openapi(
    route("post", "/v1/webhooks", "webhooks:write", "webhook.create", "webhooks", {
      summary: "Register a webhook (its whsec_ secret is in this answer only)",
      request: { body: jsonBody(WebhookBody) },
      responses: { 201: json(CreatedWebhook, "The webhook, with its secret"), ...ERRORS },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const s = c.var.services;
      const refused = await refuseHookUrl(body.url, s.allowPrivateHooks);
      if (refused !== undefined) throw new HttpError("INVALID_ARGUMENT", `url: ${refused}`, { field: "url" });
      const hook = {
        id: newId("wh"),
        orgId: c.var.principal.orgId,
        url: body.url,
        events: [...new Set(body.events)],
        secret: newWebhookSecret(),
        createdAt: new Date().toISOString(),
      };
      await s.store.createWebhook(hook);
      s.webhooks.invalidate(hook.orgId);
      return c.json(
        { id: hook.id, url: hook.url, events: hook.events, createdAt: hook.createdAt, secret: hook.secret },
        201,
      );
    },
  );

  app.openapi(
    route("get", "/v1/webhooks", "webhooks:write", "webhook.list", "webhooks", {
      summary: "The organisation's webhooks (never a secret)",
      responses: { 200: json(z.object({ webhooks: z.array(Webhook) }), "Webhooks"), ...ERRORS },
    }),
    async (c) => {
      const hooks = await c.var.services.store.listWebhooks(c.var.principal.orgId);
      return c.json({ webhooks: hooks.map(({ id, url, events, createdAt }) => ({ id, url, events, createdAt })) }, 200);
    },
  );

  const ownWebhook = async (c: Context<AppEnv>, id: string) => {
    const hook = await c.var.services.store.getWebhook(id);
    if (!hook || hook.orgId !== c.var.principal.orgId) throw new HttpError("NOT_FOUND", `No webhook "${id}"`);
    return hook;
  };

  app.openapi(
    route("delete", "/v1/webhooks/{id}", "webhooks:write", "webhook.delete", "webhooks", {
      summary: "Delete a webhook and its delivery history",
      request: { params: IdParam },
      responses: { 204: { description: "Deleted" }, ...ERRORS },
    }),
    async (c) => {
      const hook = await ownWebhook(c, c.req.valid("param").id);
      await c.var.services.store.deleteWebhook(hook.id);
      c.var.services.webhooks.invalidate(hook.orgId);
      return c.body(null, 204);
    },
  );

  app.openapi(
    route("get", "/v1/webhooks/{id}/deliveries", "webhooks:write", "webhook.deliveries", "webhooks", {
      summary: "A webhook's deliveries, newest first (the last 100)",
      request: { params: IdParam },
      responses: { 200: json(z.object({ deliveries: z.array(Delivery) }), "Deliveries"), ...ERRORS },
    }),
    async (c) => {
      const hook = await ownWebhook(c, c.req.valid("param").id);
      const rows = await c.var.services.store.listDeliveries(hook.id, 100);
      return c.json(
        {
          deliveries: rows.map((d) => ({
            id: d.id,
            event: d.event,
            status: d.status as "pending" | "delivered" | "failed",
            attempts: d.attempts,
            ...(d.lastError === undefined ? {} : { lastError: d.lastError }),
            createdAt: d.createdAt,
            updatedAt: d.updatedAt,
          })),
        },
        200,
      );
    },
  );
}
