/**
 * `kiln mcp`: one MCP session on stdin/stdout. The session's sandbox is deleted when stdin closes
 * (the client quit) or on SIGTERM/SIGINT.
 */
import type { Kiln } from "@kiln/core";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { kilnBackend } from "./backend.ts";
import { createKilnMcpSession, type KilnMcpOptions } from "./server.ts";

/** Serves MCP on stdio until the client goes away; resolves after the session's sandbox is released. */
export async function serveStdio(
  kiln: Kiln,
  options: Omit<KilnMcpOptions, "backend" | "onIdle"> = {},
  streams: { stdin?: NodeJS.ReadableStream; stdout?: NodeJS.WritableStream } = {},
): Promise<void> {
  const session = createKilnMcpSession({ ...options, backend: kilnBackend(kiln) });
  const stdin = (streams.stdin ?? process.stdin) as NodeJS.ReadStream;
  const transport = new StdioServerTransport(stdin, (streams.stdout ?? process.stdout) as NodeJS.WriteStream);
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      process.off("SIGTERM", finish);
      process.off("SIGINT", finish);
      resolve();
    };
    stdin.once("end", finish);
    stdin.once("close", finish);
    transport.onclose = finish;
    process.once("SIGTERM", finish);
    process.once("SIGINT", finish);
    void session.server.connect(transport);
  });
  await session.close();
  await session.server.close().catch(() => {});
}
