// `node bench/remote-layers.ts [rounds]`: where the time of a further remote runCode goes (issue 10).
// One sandbox, one process, the same remote client against five servers that each add a layer:
//
//   in-process        sandbox.runCode() itself (no HTTP)
//   node:http         a bare node:http server: parse the JSON body, runCode, JSON answer
//   Hono              the same route on Hono over @hono/node-server
//   OpenAPIHono       the same route declared as Kiln's is (createRoute, the CodeBody zod schema,
//                     the request's abort signal passed on)
//   Kiln, no audit    Kiln's server (startServer) with the audit append switched off
//   Kiln server       Kiln's server as it is
//
// Rounds of 50 calls per side, the order reversed every round; CPU time is this process's
// (client and server together, every thread). Prints a markdown table.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { Kiln, type Sandbox } from "@kiln/core";
import { startServer } from "@kiln/server";
import { Hono } from "hono";
import { AuditLog } from "../packages/server/src/audit/audit-log.ts";
import { CodeBody } from "../packages/server/src/schemas.ts";
import { percentile } from "./stats.ts";

const ROUNDS = Number(process.argv[2] ?? 12);
const CALLS = 50;

const serverKiln = new Kiln({ pool: { size: 1 } });
const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-layers-"));
const apiKey = `kiln_${randomBytes(24).toString("base64url")}`;
const kilnServer = await startServer({ port: 0, dataDir, adminKey: apiKey, kiln: serverKiln, log: () => {} });
const remote = new Kiln({ url: kilnServer.url, apiKey });
const box = await remote.create({ labels: { bench: "1" } });
const local: Sandbox = await serverKiln.get(box.id);

/** GET /v1/sandboxes/:id (the client's get()) and POST /v1/sandboxes/:id/code, on node:http alone. */
const bare = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const answer =
      req.method === "GET"
        ? await local.info()
        : await local.runCode((JSON.parse(Buffer.concat(chunks).toString()) as { code: string }).code);
    const body = JSON.stringify(answer);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));

const hono = new Hono();
hono.get("/v1/sandboxes/:id", async (c) => c.json(await local.info()));
hono.post("/v1/sandboxes/:id/code", async (c) => c.json(await local.runCode((await c.req.json()).code)));

const openapi = new OpenAPIHono();
openapi.get("/v1/sandboxes/:id", async (c) => c.json(await local.info()));
openapi.openapi(
  createRoute({
    method: "post",
    path: "/v1/sandboxes/{id}/code",
    request: {
      params: z.object({ id: z.string() }),
      body: { required: true, content: { "application/json": { schema: CodeBody } } },
    },
    responses: { 200: { description: "The Execution" } },
  }),
  async (c) => {
    const { code, cancellable: _, ...options } = c.req.valid("json");
    return c.json(await local.runCode(code, { ...options, signal: c.req.raw.signal }), 200);
  },
);
const servers: Server[] = [bare, serve({ fetch: hono.fetch, port: 0 }) as Server];
servers.push(serve({ fetch: openapi.fetch, port: 0 }) as Server);
await Promise.all(servers.map((s) => (s.listening ? undefined : new Promise((r) => s.once("listening", r)))));
const clients: Kiln[] = [];
const through = async (server: Server) => {
  const client = new Kiln({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiKey });
  clients.push(client);
  return (await client.get(box.id)) as unknown as Sandbox;
};

const realRecord = AuditLog.prototype.record;
const sides: { label: string; sandbox: Sandbox; noAudit?: boolean; cpu: number[]; wall: number[] }[] = [
  { label: "in-process: sandbox.runCode()", sandbox: local, cpu: [], wall: [] },
  { label: "node:http route", sandbox: await through(bare), cpu: [], wall: [] },
  { label: "Hono route (@hono/node-server)", sandbox: await through(servers[1] as Server), cpu: [], wall: [] },
  {
    label: "OpenAPIHono route (zod body, abort signal)",
    sandbox: await through(servers[2] as Server),
    cpu: [],
    wall: [],
  },
  { label: "Kiln server, audit append off", sandbox: box as unknown as Sandbox, noAudit: true, cpu: [], wall: [] },
  { label: "Kiln server", sandbox: box as unknown as Sandbox, cpu: [], wall: [] },
];

try {
  for (let i = 0; i < 100; i++) for (const side of sides) await side.sandbox.runCode("print(1+1)");
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      // Switched off for this side's block only: record() resolves at once, nothing is stored.
      AuditLog.prototype.record = side.noAudit ? async () => undefined : realRecord;
      const before = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now();
        await side.sandbox.runCode("print(1+1)");
        side.wall.push(performance.now() - started);
      }
      const used = process.cpuUsage(before);
      side.cpu.push((used.user + used.system) / 1000 / CALLS);
    }
  }
  AuditLog.prototype.record = realRecord;
  const lines = [
    `### A further runCode('print(1+1)'), layer by layer (${ROUNDS} rounds of ${CALLS} calls per side)`,
    "",
    "| through | CPU ms/call, median block | min block | wall p50 ms | p95 ms |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...sides.map(
      (s) =>
        `| ${s.label} | ${percentile(s.cpu, 50).toFixed(3)} | ${Math.min(...s.cpu).toFixed(3)} | ${percentile(s.wall, 50).toFixed(2)} | ${percentile(s.wall, 95).toFixed(2)} |`,
    ),
    "",
    `Node ${process.versions.node}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}; client and servers in this one process.`,
  ];
  console.log(lines.join("\n"));
} finally {
  AuditLog.prototype.record = realRecord;
  await box.delete();
  await Promise.all([remote, ...clients].map((k) => k.close()));
  for (const s of servers) s.close();
  await kilnServer.close();
  await serverKiln.close();
  await rm(dataDir, { recursive: true, force: true });
}
