/**
 * `@kiln/mcp`: Kiln sandboxes over the Model Context Protocol. `serveStdio(kiln)` is `kiln mcp`;
 * `McpHttpSessions` is the server's Streamable HTTP endpoint `/mcp`; `createKilnMcpSession` is one
 * session's McpServer for any other transport.
 */
export { forbidden, kilnBackend, type McpBackend, type McpScope } from "./backend.ts";
export { type McpCaller, McpHttpSessions } from "./http.ts";
export { type ClientConfigs, printConfig } from "./print-config.ts";
export {
  createKilnMcpSession,
  DEFAULT_SESSION_IDLE_MS,
  type KilnMcpOptions,
  type KilnMcpSession,
  TOOL_SCOPES,
} from "./server.ts";
export { serveStdio } from "./stdio.ts";
export { VERSION } from "./version.ts";
