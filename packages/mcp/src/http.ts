/**
 * MCP over Streamable HTTP (the server's `/mcp`): one KilnMcpSession per MCP session id, each
 * bound to the caller that opened it (another key gets 404 for it). A session ends, and its
 * sandbox is deleted, on DELETE /mcp, when it sits idle too long, or when the sessions close.
 */
import { randomUUID } from "node:crypto";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { McpBackend } from "./backend.ts";
import { createKilnMcpSession, type KilnMcpOptions, type KilnMcpSession } from "./server.ts";

export interface McpCaller {
  /** Who the caller is (the server: the key's id); a session answers only its opener. */
  owner: string;
  backend: McpBackend;
}

interface Entry {
  owner: string;
  transport: WebStandardStreamableHTTPServerTransport;
  session: KilnMcpSession;
}

function rpcError(status: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export class McpHttpSessions {
  readonly #sessions = new Map<string, Entry>();
  readonly #options: Omit<KilnMcpOptions, "backend" | "onIdle">;

  constructor(options: Omit<KilnMcpOptions, "backend" | "onIdle"> = {}) {
    this.#options = options;
  }

  /** Open sessions (their ids). */
  get ids(): string[] {
    return [...this.#sessions.keys()];
  }

  /** The sandbox id of a session, once it has made one. */
  sandboxOf(sessionId: string): string | undefined {
    return this.#sessions.get(sessionId)?.session.sandboxId;
  }

  /** Answers one HTTP request to the MCP endpoint (POST, GET or DELETE). */
  async handle(request: Request, caller: McpCaller): Promise<Response> {
    const id = request.headers.get("mcp-session-id");
    if (id !== null) {
      const entry = this.#sessions.get(id);
      if (!entry || entry.owner !== caller.owner)
        return rpcError(404, "Unknown or ended MCP session: initialize again");
      return entry.transport.handleRequest(request);
    }
    if (request.method !== "POST") return rpcError(400, "No mcp-session-id: send an initialize request first");
    let sessionId: string | undefined;
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        sessionId = sid;
        this.#sessions.set(sid, { owner: caller.owner, transport, session });
      },
      onsessionclosed: (sid) => this.end(sid),
    });
    const session = createKilnMcpSession({
      ...this.#options,
      backend: caller.backend,
      onIdle: () => {
        if (sessionId !== undefined) void this.end(sessionId);
      },
    });
    await session.server.connect(transport);
    const response = await transport.handleRequest(request);
    // Not an initialize request (or a refused one): nothing to keep.
    if (sessionId === undefined) {
      await session.close();
      await session.server.close().catch(() => {});
    }
    return response;
  }

  /** Ends one session and deletes its sandbox. */
  async end(sessionId: string): Promise<void> {
    const entry = this.#sessions.get(sessionId);
    if (!entry) return;
    this.#sessions.delete(sessionId);
    await entry.session.close();
    await entry.session.server.close().catch(() => {});
  }

  /** Ends every session (the server's close). */
  async close(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.end(id)));
  }
}
