/** `kiln mcp --print-config`: ready-to-paste MCP client configuration for Claude Desktop, Cursor and VS Code. */

export interface ClientConfigs {
  /** claude_desktop_config.json and Cursor's ~/.cursor/mcp.json (the same shape). */
  claudeDesktop: unknown;
  cursor: unknown;
  /** VS Code's .vscode/mcp.json. */
  vscode: unknown;
}

/**
 * The configurations that start `command args` (e.g. `npx -y @kiln/cli mcp`) on stdio, or, with
 * `url`, connect to a Kiln server's /mcp with a Bearer key.
 */
export function printConfig(options: {
  command: string;
  args: string[];
  env?: Record<string, string>;
  url?: string;
  apiKey?: string;
}): ClientConfigs {
  const env = options.env && Object.keys(options.env).length > 0 ? { env: options.env } : {};
  const stdio = { command: options.command, args: options.args, ...env };
  if (options.url !== undefined) {
    const url = `${options.url.replace(/\/+$/, "")}/mcp`;
    const headers = { Authorization: `Bearer ${options.apiKey ?? "<your Kiln API key>"}` };
    return {
      // Claude Desktop speaks stdio to local servers: `kiln mcp` with KILN_URL relays to the server.
      claudeDesktop: { mcpServers: { kiln: stdio } },
      cursor: { mcpServers: { kiln: { url, headers } } },
      vscode: { servers: { kiln: { type: "http", url, headers } } },
    };
  }
  return {
    claudeDesktop: { mcpServers: { kiln: stdio } },
    cursor: { mcpServers: { kiln: stdio } },
    vscode: { servers: { kiln: { type: "stdio", ...stdio } } },
  };
}
