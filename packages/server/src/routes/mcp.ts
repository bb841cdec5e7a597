/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP (@kiln/mcp). The Bearer key goes
 * through the same authentication as /v1; any valid key opens a session, and each tool checks
 * the scope of the route it mirrors (a missing one is an isError result naming FORBIDDEN). Every
 * tool call is an audit event: run_command as sandbox.exec, run_code as sandbox.code, write_file as
 * files.write (as their routes), the others as mcp.<tool>.
 */
import type { AuditAction } from "@kiln/core/vocabulary";
import { forbidden, type McpBackend, McpHttpSessions, type ToolCall } from "@kiln/mcp";
import type { MiddlewareHandler } from "hono";
import type { AuditLog } from "../audit/audit-log.ts";
import { hasScope, type Principal } from "../pipeline/principal.ts";
import type { AppEnv } from "../pipeline/types.ts";
import type { OrgScope } from "../tenancy/org-scope.ts";
import type { App } from "./common.ts";

export const MCP_PATH = "/mcp";

const AUDIT_ACTIONS: Record<string, AuditAction> = {
  run_command: "sandbox.exec",
  run_code: "sandbox.code",
  write_file: "files.write",
};

/** The audit action of a tool call (src/vocabulary.test.ts: every tool's is in the vocabulary). */
export function mcpAuditAction(tool: string): string {
  return AUDIT_ACTIONS[tool] ?? `mcp.${tool}`;
}

function orgBackend(tenant: OrgScope, principal: Principal, audit?: AuditLog): McpBackend {
  return {
    toolCalled: (call: ToolCall) => {
      void audit?.record({
        at: new Date().toISOString(),
        orgId: principal.orgId,
        keyId: principal.keyId,
        action: mcpAuditAction(call.tool),
        target: call.sandbox ?? null,
        detail: { via: "mcp", tool: call.tool, ...call.detail },
        outcome: call.outcome,
        status: call.outcome === "denied" ? 403 : 200,
        durationMs: call.durationMs,
      });
    },
    create: (options) => tenant.create(options),
    get: (idOrName) => tenant.get(idOrName),
    list: (labels) => tenant.list(labels),
    info: (sandbox) => tenant.info(sandbox),
    delete: (sandbox) => tenant.delete(sandbox),
    snapshot: (sandbox, name) => tenant.snapshot(sandbox, name),
    authorize: (scope) => (hasScope(principal, scope) ? undefined : forbidden(scope)),
    scrub: (message) => tenant.scrub(message),
  };
}

export function mcpRoutes(
  app: App,
  auth: MiddlewareHandler<AppEnv>,
  sessions: McpHttpSessions,
  audit?: AuditLog,
): void {
  app.use(MCP_PATH, auth);
  app.all(MCP_PATH, (c) =>
    sessions.handle(c.req.raw, {
      owner: c.var.principal.keyId,
      backend: orgBackend(c.var.tenant, c.var.principal, audit),
    }),
  );
}

export { McpHttpSessions };
