// A real Kiln server in this process, on a free port, with a temp data dir and a known admin
// key: what the remote client's tests and the adapters' remote-mode suites talk to.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerConfig, startServer } from "@kiln/server";

export interface TestServer {
  url: string;
  apiKey: string;
  close(): Promise<void>;
}

export async function testServer(config: Partial<ServerConfig> = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-remote-test-"));
  const apiKey = `kiln_${randomBytes(24).toString("base64url")}`;
  const logs: string[] = [];
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    adminKey: apiKey,
    log: (line) => {
      logs.push(line);
      if (logs.length > 200) logs.shift();
    },
    ...config,
  });
  return {
    url: server.url,
    apiKey,
    close: async () => {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
