/**
 * The server's vocabulary, written once (`@kiln/core/vocabulary`): the API-key scopes, the audit
 * actions and the webhook events of docs/server.md, each with a one-line description. The server
 * derives its request schemas and OpenAPI document from these lists; the CLI, the MCP server and
 * the dashboard import them for their help texts, checks, checkbox lists and filters.
 *
 * Browser-safe: no imports at all (the dashboard bundles this file for the browser; its
 * vocabulary test fails on any import here). The names are wire names: never rename one.
 */

/** Every scope a key can hold, in the order lists show them. */
export const SCOPE_INFO = {
  "sandboxes:read": "list and inspect sandboxes, snapshots, volumes and images",
  "sandboxes:write": "create, start, stop and delete sandboxes; change a sandbox's network",
  "sandboxes:exec": "run commands and code, terminals, background processes, previews and tickets",
  "files:read": "read, list and stat a sandbox's files",
  "files:write": "write, delete and make directories in a sandbox's files",
  "snapshots:write": "take and delete snapshots",
  "volumes:write": "create and delete volumes",
  "keys:write": "create, list and revoke API keys (only with a subset of the key's own scopes)",
  "webhooks:write": "register, list and delete webhooks and read their deliveries",
  "audit:read": "read the organisation's audit log",
  "orgs:admin": "organisations, their quotas and network rules, custom images (default organisation's keys only)",
  "*": "every scope (orgs:admin only on a key of the default organisation)",
} as const satisfies Record<string, string>;
export type Scope = keyof typeof SCOPE_INFO;
export const SCOPES = Object.keys(SCOPE_INFO) as readonly Scope[] as readonly [Scope, ...Scope[]];

/**
 * Every action the audit log records under its own name. A read that is refused and names no
 * action is recorded as "<METHOD> <route path>" instead, so a log's action is a string.
 */
export const AUDIT_ACTION_INFO = {
  "sandbox.create": "a sandbox was created",
  "sandbox.list": "sandboxes were listed (recorded when refused)",
  "sandbox.get": "a sandbox was inspected (recorded when refused)",
  "sandbox.start": "a stopped sandbox was started",
  "sandbox.stop": "a sandbox was stopped",
  "sandbox.delete": "a sandbox was deleted",
  "sandbox.exec": "a command ran (the command, never stdin or env values)",
  "sandbox.stdin": "input was sent to a running command",
  "sandbox.cancel": "a running command was cancelled",
  "sandbox.code": "code ran (its size and SHA-256, never the code)",
  "network.update": "a sandbox's network was changed",
  "files.read": "a file was read (recorded when refused)",
  "files.write": "a file was written (its path)",
  "files.list": "a directory was listed (recorded when refused)",
  "files.stat": "a path was inspected (recorded when refused)",
  "files.mkdir": "a directory was made",
  "files.delete": "a path was deleted",
  "pty.open": "a terminal was opened",
  "pty.attach": "a terminal was attached to",
  "pty.close": "a terminal was closed",
  "process.start": "a background process was started",
  "process.list": "background processes were listed (recorded when refused)",
  "process.logs": "a background process's output was read (recorded when refused)",
  "process.signal": "a background process was sent a signal",
  "preview.create": "a preview URL was made",
  "ticket.create": "a one-use WebSocket ticket was made",
  "snapshot.create": "a snapshot was taken",
  "snapshot.list": "snapshots were listed (recorded when refused)",
  "snapshot.delete": "a snapshot was deleted",
  "volume.create": "a volume was created",
  "volume.list": "volumes were listed (recorded when refused)",
  "volume.delete": "a volume was deleted",
  "image.build": "a custom image was built",
  "image.list": "custom images were listed (recorded when refused)",
  "image.delete": "a custom image was deleted",
  "org.create": "an organisation was created",
  "org.list": "organisations were listed (recorded when refused)",
  "org.quotas": "an organisation's quotas were changed",
  "org.network": "an organisation's network default or ceiling was changed",
  "key.create": "an API key was created",
  "key.list": "API keys were listed (recorded when refused)",
  "key.revoke": "an API key was revoked",
  "key.use": "a revoked or expired key was presented (always denied)",
  "session.create": "a dashboard session was opened with a key",
  "audit.list": "the audit log was read (recorded when refused)",
  "webhook.create": "a webhook was registered",
  "webhook.list": "webhooks were listed (recorded when refused)",
  "webhook.delete": "a webhook was deleted",
  "webhook.deliveries": "a webhook's deliveries were read (recorded when refused)",
  "mcp.read_file": "the MCP tool read_file was called",
  "mcp.list_files": "the MCP tool list_files was called",
  "mcp.create_sandbox": "the MCP tool create_sandbox was called",
  "mcp.list_sandboxes": "the MCP tool list_sandboxes was called",
  "mcp.delete_sandbox": "the MCP tool delete_sandbox was called",
  "mcp.snapshot_sandbox": "the MCP tool snapshot_sandbox was called",
  "mcp.start_process": "the MCP tool start_process was called",
  "mcp.preview_url": "the MCP tool preview_url was called",
} as const satisfies Record<string, string>;
export type AuditAction = keyof typeof AUDIT_ACTION_INFO;
export const AUDIT_ACTIONS = Object.keys(AUDIT_ACTION_INFO) as readonly AuditAction[] as readonly [
  AuditAction,
  ...AuditAction[],
];

/** Every webhook event: the audit action whose success sends it, and what it means. */
export const WEBHOOK_EVENT_INFO = {
  "sandbox.created": { action: "sandbox.create", description: "a sandbox was created" },
  "sandbox.started": { action: "sandbox.start", description: "a stopped sandbox was started" },
  "sandbox.stopped": { action: "sandbox.stop", description: "a sandbox was stopped" },
  "sandbox.deleted": { action: "sandbox.delete", description: "a sandbox was deleted (data: the sandbox as it was)" },
  "snapshot.created": { action: "snapshot.create", description: "a snapshot was taken" },
} as const satisfies Record<string, { action: AuditAction; description: string }>;
export type WebhookEvent = keyof typeof WEBHOOK_EVENT_INFO;
export const WEBHOOK_EVENTS = Object.keys(WEBHOOK_EVENT_INFO) as readonly WebhookEvent[] as readonly [
  WebhookEvent,
  ...WebhookEvent[],
];

/** The webhook event an audit action's success sends, if any. */
export const WEBHOOK_EVENT_OF_ACTION: Readonly<Partial<Record<AuditAction, WebhookEvent>>> = Object.fromEntries(
  WEBHOOK_EVENTS.map((event) => [WEBHOOK_EVENT_INFO[event].action, event]),
);

export function isScope(name: string): name is Scope {
  return Object.hasOwn(SCOPE_INFO, name);
}
export function isAuditAction(name: string): name is AuditAction {
  return Object.hasOwn(AUDIT_ACTION_INFO, name);
}
export function isWebhookEvent(name: string): name is WebhookEvent {
  return Object.hasOwn(WEBHOOK_EVENT_INFO, name);
}
