import { SCOPES, type Scope } from "@kiln/core/vocabulary";

/** Who a request is: every /v1 request resolves to one of these before any route runs. */
export interface Principal {
  orgId: string;
  keyId: string;
  scopes: readonly string[];
  /** A key restricted to one sandbox reaches that sandbox alone. */
  sandboxId?: string;
  /** When the key stops working (a key never mints a key that outlives it). */
  expiresAt?: string;
}

/** The scopes of docs/server.md: one list for the server, the CLI, the MCP server and the dashboard. */
export { SCOPES, type Scope } from "@kiln/core/vocabulary";

export const DEFAULT_ORG_ID = "default";

/** `*` is every scope, except that `orgs:admin` belongs to keys of the default organisation only. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  if (scope === "orgs:admin" && principal.orgId !== DEFAULT_ORG_ID) return false;
  return principal.scopes.includes("*") || principal.scopes.includes(scope);
}

/** Every scope a key's list grants in its organisation (`*` expanded). */
export function effectiveScopes(scopes: readonly string[], orgId: string): Set<Scope> {
  const all = scopes.includes("*") ? SCOPES.filter((s) => s !== "*") : (scopes as Scope[]);
  return new Set(all.filter((s) => s !== "*" && (s !== "orgs:admin" || orgId === DEFAULT_ORG_ID)));
}
