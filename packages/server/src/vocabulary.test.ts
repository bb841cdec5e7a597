/**
 * Every name a route declares is in the one vocabulary (@kiln/core/vocabulary) the CLI, the MCP
 * server and the dashboard read: walked from the OpenAPI document, which carries each /v1
 * route's policy (pipeline.ts v1Route), so a route added with a name of its own fails here.
 */
import {
  AUDIT_ACTIONS,
  isAuditAction,
  isScope,
  SCOPES,
  WEBHOOK_EVENT_OF_ACTION,
  WEBHOOK_EVENTS,
} from "@kiln/core/vocabulary";
import { TOOL_SCOPES } from "@kiln/mcp";
import { describe, expect, it } from "vitest";
import { createApp } from "./app.ts";
import { POLICY_ACTION, POLICY_SCOPE } from "./docs/http-reference.ts";
import { ADMISSION_ACTIONS } from "./hooks/admission.ts";
import { EVENT_OF_ACTION } from "./hooks/webhooks.ts";
import type { Services } from "./pipeline/services.ts";
import { mcpAuditAction } from "./routes/mcp.ts";

// Routes are only declared here, never called: no engine, store or network is reached.
const app = createApp({
  services: { kiln: {} } as Services,
  limiter: {} as never,
  tickets: {} as never,
  maxUploadBytes: 1,
  tmpDir: "/nonexistent",
  version: "0.0.0",
  log: () => {},
  sessionKey: Buffer.alloc(32),
});
const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Kiln", version: "0.0.0" } });
const operations = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
  Object.entries(item as Record<string, Record<string, unknown>>)
    .filter(([method]) => ["get", "put", "post", "delete", "patch"].includes(method))
    .map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })),
);
/** The routes declared with v1Route (the session routes authenticate themselves and have no policy). */
const v1 = operations.filter((o) => POLICY_SCOPE in o.op);

describe("the vocabulary of scopes, audit actions and webhook events", () => {
  it("names every route's scope and audit action", () => {
    expect(v1.length).toBeGreaterThan(40);
    const unknown: string[] = [];
    for (const { route, op } of v1) {
      const scope = op[POLICY_SCOPE];
      if (typeof scope !== "string" || !isScope(scope)) unknown.push(`${route}: scope ${String(scope)}`);
      const action = op[POLICY_ACTION];
      if (action !== undefined && (typeof action !== "string" || !isAuditAction(action))) {
        unknown.push(`${route}: action ${String(action)}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it("has no audit action that nothing records", () => {
    const declared = new Set(v1.map(({ op }) => op[POLICY_ACTION]));
    // Recorded outside a route policy: authentication (key.use), the session route, /mcp's tools.
    for (const a of ["key.use", "session.create"]) declared.add(a);
    for (const tool of Object.keys(TOOL_SCOPES)) declared.add(mcpAuditAction(tool));
    expect(AUDIT_ACTIONS.filter((a) => !declared.has(a))).toEqual([]);
    expect([...declared].filter((a) => typeof a === "string" && !isAuditAction(a))).toEqual([]);
  });

  it("gives the request schemas the vocabulary's scopes and webhook events", () => {
    const schemaOf = (route: string) => {
      const op = operations.find((o) => o.route === route)?.op as {
        requestBody: { content: { "application/json": { schema: { properties: Record<string, unknown> } } } };
      };
      return op.requestBody.content["application/json"].schema.properties;
    };
    const keys = schemaOf("POST /v1/keys") as { scopes: { items: { enum: string[]; description: string } } };
    expect(keys.scopes.items.enum).toEqual([...SCOPES]);
    expect(keys.scopes.items.description).toContain("`sandboxes:exec`: run commands");
    const hooks = schemaOf("POST /v1/webhooks") as { events: { items: { enum: string[] } } };
    expect(hooks.events.items.enum).toEqual([...WEBHOOK_EVENTS]);
  });

  it("sends each webhook event on a recorded action, and asks admission about known actions only", () => {
    expect(EVENT_OF_ACTION).toEqual(WEBHOOK_EVENT_OF_ACTION);
    expect(Object.keys(EVENT_OF_ACTION)).toEqual([
      "sandbox.create",
      "sandbox.start",
      "sandbox.stop",
      "sandbox.delete",
      "snapshot.create",
    ]);
    expect([...ADMISSION_ACTIONS].filter((a) => !isAuditAction(a))).toEqual([]);
    expect(Object.values(TOOL_SCOPES).filter((s) => !isScope(s))).toEqual([]);
  });
});
