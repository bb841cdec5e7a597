// The OpenAPI document validates, describes every route, and the pipeline guards every /v1
// route by construction: walked from the document, each one refuses a request without a key
// and answers 404 to another organisation's key for this organisation's sandbox, key or webhook.
import { request } from "node:http";
import { compileErrors, validate } from "@readme/openapi-parser";
import { describe, expect, it } from "vitest";
import { addOrgKey, testServer } from "./helpers.ts";

// Private hooks allowed: the walk registers a webhook on a loopback address.
const t = await testServer({ allowPrivateHooks: true });
const doc = (await t.api("GET", "/v1/openapi.json", { key: null })).body;

type Op = { method: string; path: string };
const operations: Op[] = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
  Object.keys(item).map((method) => ({ method: method.toUpperCase(), path })),
);

/** A request the route's schema accepts, so that what answers is the pipeline or the handler. */
function sample(op: Op, sandbox: string): { url: string; body?: unknown; raw?: string } {
  const url = op.path
    .replace(/\{(id|idOrName)\}/, sandbox)
    .replace("{name}", "x")
    .replace("{ptyId}", "pty_x")
    .replace("{pid}", "1")
    .replace("{port}", "8000");
  const withPath = op.path.includes("/files") && !op.path.endsWith("/mkdir") ? `${url}?path=/workspace/x` : url;
  if (op.method === "PUT" && op.path.endsWith("/network")) return { url, body: { network: "none" } };
  if (op.method === "PUT" && op.path.endsWith("/files")) return { url: withPath, raw: "x" };
  if (op.method === "PUT") return { url: withPath, body: {} };
  const bodies: Record<string, unknown> = {
    exec: { command: "true" },
    code: { code: "1" },
    mkdir: { path: "x" },
    snapshots: { name: "x" },
    sandboxes: {},
    volumes: { name: "x" },
    keys: { name: "x", scopes: [] },
    orgs: { name: "x" },
    webhooks: { url: "http://127.0.0.1:9/", events: ["sandbox.created"] },
    pty: { cols: 80, rows: 24 },
    processes: { command: "true" },
    signal: {},
    preview: {},
  };
  const last = op.path.split("/").at(-1) as string;
  return op.method === "POST" ? { url: withPath, body: bodies[last] ?? {} } : { url: withPath };
}

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(doc));
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
  });

  it("describes every route of the contract", () => {
    const have = operations.map((o) => `${o.method} ${o.path}`);
    for (const route of [
      "GET /healthz",
      "POST /v1/sandboxes",
      "GET /v1/sandboxes",
      "GET /v1/sandboxes/{idOrName}",
      "DELETE /v1/sandboxes/{idOrName}",
      "POST /v1/sandboxes/{id}/start",
      "POST /v1/sandboxes/{id}/stop",
      "POST /v1/sandboxes/{id}/exec",
      "POST /v1/sandboxes/{id}/code",
      "GET /v1/sandboxes/{id}/files",
      "PUT /v1/sandboxes/{id}/files",
      "DELETE /v1/sandboxes/{id}/files",
      "GET /v1/sandboxes/{id}/files/list",
      "GET /v1/sandboxes/{id}/files/stat",
      "PUT /v1/sandboxes/{id}/network",
      "GET /v1/sandboxes/{id}/network/log",
      "POST /v1/sandboxes/{id}/files/mkdir",
      "POST /v1/sandboxes/{id}/snapshots",
      "GET /v1/snapshots",
      "DELETE /v1/snapshots/{name}",
      "POST /v1/volumes",
      "GET /v1/volumes",
      "DELETE /v1/volumes/{name}",
      "POST /v1/orgs",
      "GET /v1/orgs",
      "PUT /v1/orgs/{id}/quotas",
      "PUT /v1/orgs/{id}/network",
      "POST /v1/keys",
      "GET /v1/keys",
      "DELETE /v1/keys/{id}",
      "GET /v1/audit",
      "POST /v1/webhooks",
      "GET /v1/webhooks",
      "DELETE /v1/webhooks/{id}",
      "GET /v1/webhooks/{id}/deliveries",
      "POST /v1/sandboxes/{id}/pty",
      "GET /v1/sandboxes/{id}/pty/{ptyId}",
      "POST /v1/sandboxes/{id}/processes",
      "GET /v1/sandboxes/{id}/processes",
      "GET /v1/sandboxes/{id}/processes/{pid}/logs",
      "POST /v1/sandboxes/{id}/processes/{pid}/signal",
      "POST /v1/sandboxes/{id}/ports/{port}/preview",
      "POST /v1/tickets",
    ]) {
      expect(have).toContain(route);
    }
    const create = doc.paths["/v1/sandboxes"].post;
    expect(create.requestBody.content["application/json"].schema.$ref).toBe(
      "#/components/schemas/CreateSandboxOptions",
    );
    expect(Object.keys(doc.paths["/v1/sandboxes/{id}/exec"].post.responses["200"].content)).toContain(
      "text/event-stream",
    );
  });

  it("every /v1 route needs a key", async () => {
    // Signing in and out of the dashboard (POST/DELETE /v1/session) run before a session exists or after it ended.
    const v1 = operations.filter((o) => o.path.startsWith("/v1/") && o.path !== "/v1/session");
    expect(v1.length).toBeGreaterThanOrEqual(31);
    for (const [i, op] of v1.entries()) {
      const s = sample(op, "0123456789ab");
      // Failed authentications are limited to 30 a minute per client address: the walk comes
      // from a new loopback address every 20 requests.
      const status = await unauthenticated(op.method, s.url, s.body ?? s.raw, `127.0.0.${2 + Math.floor(i / 20)}`);
      expect(status, `${op.method} ${op.path}`).toBe(401);
      expect(op, "declares bearer security").toSatisfy(
        () => JSON.stringify(doc.paths[op.path][op.method.toLowerCase()].security) === '[{"bearer":[]}]',
      );
    }
  });

  it("every sandbox route answers another organisation's key with 404", async () => {
    const mine = await t.create();
    const other = await addOrgKey(t.dataDir, "o3walk");
    const sandboxOps = operations.filter((o) => /^\/v1\/sandboxes\/\{(id|idOrName)\}/.test(o.path));
    expect(sandboxOps.length).toBeGreaterThanOrEqual(12);
    for (const id of [mine.id as string, (mine.id as string).slice(0, 12)]) {
      for (const op of sandboxOps) {
        const s = sample(op, id);
        const res = await t.api(op.method, s.url, {
          key: other,
          ...(s.body ? { body: s.body } : {}),
          ...(s.raw ? { raw: s.raw } : {}),
        });
        expect(res.status, `${op.method} ${op.path} ${res.text}`).toBe(404);
        expect(res.body.error.code).toBe("SANDBOX_NOT_FOUND");
      }
    }
    // And the sandbox is untouched.
    expect((await t.api("GET", `/v1/sandboxes/${mine.id}`)).body.state).toBe("running");
  });
});

describe("another organisation's ids", () => {
  it("are not found in the key, webhook and quota routes, nor in any list", async () => {
    const key = await t.api("POST", "/v1/keys", { body: { name: "walk", scopes: ["sandboxes:read"] } });
    expect(key.status).toBe(201);
    const hook = await t.api("POST", "/v1/webhooks", {
      body: { url: "http://127.0.0.1:9/hook", events: ["sandbox.created"] },
    });
    expect(hook.status).toBe(201);
    const hookId = hook.body.id as string;
    const other = await addOrgKey(t.dataDir, "o4walk");
    const idOps = operations.filter(
      (o) => o.path.startsWith("/v1/") && !o.path.startsWith("/v1/sandboxes/") && o.path.includes("{id}"),
    );
    expect(idOps.map((o) => `${o.method} ${o.path}`).sort()).toEqual([
      "DELETE /v1/keys/{id}",
      "DELETE /v1/webhooks/{id}",
      "GET /v1/webhooks/{id}/deliveries",
      "PUT /v1/orgs/{id}/network",
      "PUT /v1/orgs/{id}/quotas",
    ]);
    for (const op of idOps) {
      const id = op.path.startsWith("/v1/keys") ? key.body.id : op.path.startsWith("/v1/orgs") ? "default" : hookId;
      const s = sample(op, id);
      const res = await t.api(op.method, s.url, { key: other, ...(s.body ? { body: s.body } : {}) });
      // orgs:admin is never held outside the default organisation: 403 before any lookup.
      const expected = op.path.startsWith("/v1/orgs") ? 403 : 404;
      expect(res.status, `${op.method} ${op.path} ${res.text}`).toBe(expected);
    }
    const keys = await t.api("GET", "/v1/keys", { key: other });
    expect(keys.body.keys.map((k: { id: string }) => k.id)).not.toContain(key.body.id);
    expect((await t.api("GET", "/v1/keys?orgId=default", { key: other })).status).toBe(403);
    expect((await t.api("GET", "/v1/webhooks", { key: other })).body.webhooks).toEqual([]);
    const audit = await t.api("GET", "/v1/audit?limit=1000", { key: other });
    expect(audit.body.events.every((e: { orgId: string }) => e.orgId === "o4walk")).toBe(true);
    // And this organisation's key still works.
    expect((await t.api("GET", "/v1/sandboxes", { key: key.body.key })).status).toBe(200);
  });
});

/** A request without a key from a chosen loopback source address; its status. */
function unauthenticated(method: string, path: string, body: unknown, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request(
      `${t.url}${path}`,
      {
        method,
        localAddress,
        headers:
          payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
