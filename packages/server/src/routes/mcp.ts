/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP (@kiln/mcp). The Bearer key goes
 * through the same authentication as /v1; any valid key opens a session, and each tool checks
 * the scope of the route it mirrors (a missing one is an isError result naming FORBIDDEN).
 */
import { forbidden, type McpBackend, McpHttpSessions } from "@kiln/mcp";
import type { MiddlewareHandler } from "hono";
import { hasScope, type Principal } from "../pipeline/principal.ts";
import type { AppEnv } from "../pipeline/types.ts";
import type { OrgScope } from "../tenancy/org-scope.ts";
import type { App } from "./common.ts";

export const MCP_PATH = "/mcp";

function orgBackend(tenant: OrgScope, principal: Principal): McpBackend {
  return {
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

export function mcpRoutes(app: App, auth: MiddlewareHandler<AppEnv>, sessions: McpHttpSessions): void {
  app.use(MCP_PATH, auth);
  app.all(MCP_PATH, (c) =>
    sessions.handle(c.req.raw, {
      owner: c.var.principal.keyId,
      backend: orgBackend(c.var.tenant, c.var.principal),
    }),
  );
}

export { McpHttpSessions };
