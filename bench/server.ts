// The server over loopback HTTP (`pnpm bench` runs this after the in-process cases; alone:
// `node bench/server.ts`). The server runs in its own process, as `kiln serve` does, so its
// RSS is its own. The remote client's cases (warm create + first runCode through
// `new Kiln({ url })`) belong next to these once the remote client exists.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Kiln } from "@kiln/core";
import { measure, percentile, type Series, table, timeOnly } from "./stats.ts";

const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 30);
const SERVE = new URL("../packages/server/test/fixtures/serve.ts", import.meta.url).pathname;

interface Child {
  url: string;
  key: string;
  rss(): Promise<number>;
  stop(): Promise<void>;
}

async function startServerProcess(): Promise<Child> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-server-"));
  const child = spawn(process.execPath, [SERVE], {
    env: { ...process.env, KILN_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
  const { url, key, pid } = JSON.parse(line) as { url: string; key: string; pid: number };
  return {
    url,
    key,
    async rss() {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    },
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * What the pipeline costs a request: authentication (HMAC of the key, one indexed lookup) and
 * the audit record (one appended, hash-chained row), over an unauthenticated baseline route that
 * passes the same access log and router (`GET /nope`, a 404). The audited request is a denied
 * one (a key without audit:read asking for the audit log: 403, audited as denied), so neither
 * engine work nor a request body is in it. The server runs in this process on SQLite, as `kiln serve` does by default.
 */
export async function authAuditBenchmarks(kiln: Kiln, iterations = 2000): Promise<string> {
  const { startServer } = await import("../packages/server/src/index.ts");
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-auth-"));
  const server = await startServer({ port: 0, dataDir, kiln, log: () => {} });
  const admin = server.createdAdminKey as string;
  try {
    const made = await fetch(`${server.url}/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench", scopes: ["sandboxes:read"] }),
    });
    const reader = ((await made.json()) as { key: string }).key;
    const request = (path: string, init: RequestInit, expected: number) => async () => {
      const started = performance.now();
      const res = await fetch(`${server.url}${path}`, init);
      await res.arrayBuffer();
      const elapsed = performance.now() - started;
      if (res.status !== expected) throw new Error(`${path}: ${res.status}, expected ${expected}`);
      return elapsed;
    };
    const cases = {
      baseline: request("/nope", {}, 404),
      auth: request("/v1/nope", { headers: { authorization: `Bearer ${reader}` } }, 404),
      audit: request("/v1/audit", { headers: { authorization: `Bearer ${reader}` } }, 403),
    };
    // Interleaved, so that load from elsewhere on the machine falls on every case alike.
    const samples: Record<keyof typeof cases, number[]> = { baseline: [], auth: [], audit: [] };
    for (let i = 0; i < iterations + 200; i++) {
      for (const [name, once] of Object.entries(cases) as [keyof typeof cases, () => Promise<number>][]) {
        const ms = await once();
        if (i >= 200) samples[name].push(ms);
      }
    }
    const baseline: Series = {
      label: "GET /nope, no key (baseline: router, access log, 404)",
      samples: samples.baseline,
    };
    const auth: Series = { label: "GET /v1/nope with a key (authentication, then 404)", samples: samples.auth };
    const audit: Series = {
      label: "GET /v1/audit with a key lacking audit:read (authentication, scope, audit row, 403)",
      samples: samples.audit,
    };
    const over = (s: Series) => (percentile(s.samples, 50) - percentile(baseline.samples, 50)).toFixed(3);
    return [
      table(
        "What authentication and the audit log cost a request (SQLite, server in this process)",
        [baseline, auth, audit],
        baseline,
      ),
      "",
      `Over the baseline at p50: authentication ${over(auth)} ms, authentication + audit ${over(audit)} ms (target: under 1 ms). ${iterations} requests per case, interleaved, keep-alive, after 200 of warm-up.`,
    ].join("\n");
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function serverBenchmarks(kiln: Kiln): Promise<string[]> {
  const sections: string[] = [await authAuditBenchmarks(kiln)];
  const server = await startServerProcess();
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  const made: string[] = [];
  const create = async () => {
    const info = await call("POST", "/v1/sandboxes", { labels: { bench: "1" } });
    made.push(info.id as string);
    return info.id as string;
  };
  try {
    const idleRss = await server.rss();

    // A further runCode in a running sandbox: over HTTP vs in-process on the same sandbox.
    const id = await create();
    await call("POST", `/v1/sandboxes/${id}/code`, { code: "1" });
    const sandbox = await kiln.get(id);
    await sandbox.runCode("1");
    const series = async (label: string, once: () => Promise<number>) => {
      for (let i = 0; i < 3; i++) await once();
      const s = await measure(label, ITERATIONS, once);
      console.error(`  measured ${label}`);
      return s;
    };
    const overHttp = await series("POST /v1/sandboxes/{id}/code print(1+1) (server, loopback)", () =>
      timeOnly(async () => {
        const out = await call("POST", `/v1/sandboxes/${id}/code`, { code: "print(1+1)" });
        if (out.stdout !== "2\n") throw new Error(`printed ${JSON.stringify(out.stdout)}`);
      }),
    );
    // The same server in this process: its own cost without a second process competing for the cores.
    const { startServer } = await import("../packages/server/src/index.ts");
    const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-server-inproc-"));
    const local = await startServer({ port: 0, dataDir, kiln, log: () => {} });
    const localOverHttp = await series("the same, server in the bench's process", () =>
      timeOnly(async () => {
        const res = await fetch(`${local.url}/v1/sandboxes/${id}/code`, {
          method: "POST",
          headers: { authorization: `Bearer ${local.createdAdminKey}`, "content-type": "application/json" },
          body: JSON.stringify({ code: "print(1+1)" }),
        });
        const out = (await res.json()) as { stdout?: string };
        if (out.stdout !== "2\n") throw new Error(`printed ${JSON.stringify(out)}`);
      }),
    );
    await local.close();
    await rm(dataDir, { recursive: true, force: true });
    const inProcess = await series("sandbox.runCode('print(1+1)') (in-process, same sandbox)", () =>
      timeOnly(() => sandbox.runCode("print(1+1)")),
    );
    sections.push(
      table(
        "A further runCode in a running sandbox, through the server",
        [overHttp, localOverHttp, inProcess],
        inProcess,
      ),
    );

    // 200 concurrent exec requests across 20 sandboxes, a few waves; RSS sampled throughout.
    const ids = [id, ...(await Promise.all(Array.from({ length: 19 }, () => create())))];
    const waves = 3;
    const latencies: number[] = [];
    let errors = 0;
    let peakRss = await server.rss();
    const sampler = setInterval(() => {
      server.rss().then(
        (r) => {
          peakRss = Math.max(peakRss, r);
        },
        () => {},
      );
    }, 20);
    const started = performance.now();
    for (let w = 0; w < waves; w++) {
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const t0 = performance.now();
          try {
            const out = await call("POST", `/v1/sandboxes/${ids[i % ids.length]}/exec`, { command: "echo hi" });
            if (out.stdout !== "hi\n") throw new Error(`printed ${JSON.stringify(out.stdout)}`);
            latencies.push(performance.now() - t0);
          } catch (err) {
            errors++;
            console.error(`  exec failed: ${(err as Error).message}`);
          }
        }),
      );
    }
    const wall = performance.now() - started;
    clearInterval(sampler);
    const loadSeries: Series = {
      label: "200 concurrent exec('echo hi') across 20 sandboxes, per request",
      samples: latencies,
    };
    sections.push(
      [
        table("Concurrent exec through the server", [loadSeries], loadSeries),
        "",
        `${waves} waves of 200 requests: ${latencies.length} ok, ${errors} errors, ${((latencies.length / wall) * 1000).toFixed(0)} requests/s, p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms.`,
        "",
        `Server RSS: ${idleRss.toFixed(0)} MiB idle after start, ${peakRss.toFixed(0)} MiB peak under that load (/proc/PID/status VmRSS of the server process).`,
      ].join("\n"),
    );
  } finally {
    await server.stop();
    await Promise.all(made.map(async (id) => (await kiln.get(id).catch(() => undefined))?.delete().catch(() => {})));
  }
  return sections;
}

if (import.meta.main) {
  const kiln = new Kiln();
  const { loadavg } = await import("node:os");
  const before = loadavg()[0]?.toFixed(1);
  // --auth: only the authentication + audit cost (no sandboxes).
  const body = process.argv.includes("--auth")
    ? await authAuditBenchmarks(kiln)
    : (await serverBenchmarks(kiln)).join("\n\n");
  const report = `# Kiln server benchmarks\n\nDate: ${new Date().toISOString()}, load average ${before} at start (2 cores shared with other work)\n\n${body}\n`;
  console.log(report);
  const { writeFile } = await import("node:fs/promises");
  if (!process.argv.includes("--auth")) await writeFile(new URL("./results/server-latest.md", import.meta.url), report);
  await kiln.close();
}
