// network: "egress": outbound access, but never to cloud metadata, the host, or other sandboxes.
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { debianMirror } from "../src/images/debian-base.ts";
import type { Sandbox } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();
let server: Server;
let port = 0;
let egress: Sandbox;

beforeAll(async () => {
  // A server on every host address: the sandbox must not reach it through any of them.
  server = createServer((_req, res) => res.end("host secret"));
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  port = (server.address() as { port: number }).port;
  egress = await sandbox(kiln, { network: "egress" });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const probe = (target: string) =>
  `python3 -c "import socket; s = socket.create_connection(('${target}', ${port}), timeout=3); print('reached')"`;

describe("network: egress", () => {
  it("cannot reach cloud metadata, the host through its bridge gateway, or private ranges", async () => {
    const gateway =
      (await egress.exec("ip route 2>/dev/null | awk '/default/ {print $3}' || true")).stdout.trim() ||
      (await egress.exec("awk '$2 == \"00000000\" {print $3}' /proc/net/route")).stdout.trim();
    const targets = ["169.254.169.254", "10.0.0.1", "192.168.1.1"];
    if (/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) targets.push(gateway);
    for (const target of targets) {
      const result = await egress.exec(probe(target), { timeoutMs: 10_000 });
      expect(result.stdout, `${target} must be unreachable`).not.toMatch(/reached/);
      expect(result.stderr).toMatch(/refused|unreachable|timed out|not permitted/i);
    }
  });

  it("cannot reach another egress sandbox", async () => {
    const other = await sandbox(kiln, { network: "egress" });
    const address = (await other.exec("hostname -I")).stdout.trim().split(/\s+/)[0] ?? "";
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const listening = other.exec(`python3 -m http.server ${port} --bind 0.0.0.0`, { timeoutMs: 15_000 });
    const result = await egress.exec(probe(address), { timeoutMs: 10_000 });
    expect(result.stdout).not.toMatch(/reached/);
    await other.delete();
    await listening;
  });

  it("keeps its filter across stop and start, and the sandbox cannot remove it", async () => {
    await egress.stop();
    await egress.start();
    const result = await egress.exec(probe("169.254.169.254"), { timeoutMs: 10_000 });
    expect(result.stdout).not.toMatch(/reached/);
    const flush = await egress.exec("iptables -F OUTPUT");
    expect(flush.status).toBe("error");
  });

  it("reaches the outside world", async (context) => {
    const mirror = await debianMirror();
    if (!mirror) context.skip(); // nothing public is known to be reachable from this machine
    const host = new URL(mirror as string).host;
    const result = await egress.exec(
      `python3 -c "import socket; socket.create_connection(('${host}', 80), timeout=10); print('outside ok')"`,
      { timeoutMs: 20_000 },
    );
    expect(result.stdout).toBe("outside ok\n");
  });
});
