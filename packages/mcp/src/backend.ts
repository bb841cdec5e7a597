/**
 * Where an MCP session's sandboxes come from. `kilnBackend(kiln)` for `kiln mcp` (this machine's
 * engine, or a remote Kiln); the server passes its organisation view with the key's scopes.
 */
import type { CreateSandboxOptions, Kiln, Sandbox, SandboxInfo, SnapshotInfo } from "@kiln/core";
import type { Scope } from "@kiln/core/vocabulary";

/** A scope a tool can need: one of the server's scopes (`@kiln/core/vocabulary`). */
export type McpScope = Scope;

export interface McpBackend {
  create(options: Omit<CreateSandboxOptions, "signal">): Promise<Sandbox>;
  get(idOrName: string): Promise<Sandbox>;
  list(labels: Record<string, string>): Promise<SandboxInfo[]>;
  info(sandbox: Sandbox): Promise<SandboxInfo>;
  delete(sandbox: Sandbox): Promise<void>;
  snapshot(sandbox: Sandbox, name: string): Promise<SnapshotInfo>;
  /** undefined: allowed; otherwise the refusal the model reads (names FORBIDDEN and the scope). */
  authorize?(scope: McpScope): string | undefined;
  /** An error message in the caller's terms (the server strips its organisation prefix). */
  scrub?(message: string): string;
  /** Told of every tool call once it has answered (the server writes it to its audit log). */
  toolCalled?(call: ToolCall): void;
}

/** One tool call as the backend is told of it: never file contents, code or secrets. */
export interface ToolCall {
  tool: string;
  /** The sandbox the call named, if it named one. */
  sandbox?: string;
  outcome: "ok" | "error" | "denied";
  durationMs: number;
  /** The call's parameters worth recording: the command, a path, the code's size. */
  detail: Record<string, unknown>;
}

/** Every sandbox of a Kiln, every scope (the caller owns the engine or holds the key). */
export function kilnBackend(kiln: Kiln): McpBackend {
  return {
    create: (options) => kiln.create(options),
    get: (idOrName) => kiln.get(idOrName),
    list: (labels) => kiln.list(Object.keys(labels).length > 0 ? { labels } : undefined),
    info: (sandbox) => sandbox.info(),
    delete: (sandbox) => sandbox.delete(),
    snapshot: (sandbox, name) => sandbox.snapshot(name),
  };
}

/** The refusal text of a missing scope, the same words as the HTTP API's 403. */
export function forbidden(scope: McpScope): string {
  return `FORBIDDEN: This key lacks the scope "${scope}"`;
}
