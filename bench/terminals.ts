// Terminals and previews (`pnpm bench` runs this after the server cases; alone:
// `node bench/terminals.ts`). The server runs in its own process, as `kiln serve` does.
//   - PTY keystroke round trip through the server: one byte over the PTY WebSocket until the
//     terminal's echo comes back (WebSocket -> server -> agent -> tty echo -> back), next to the
//     same round trip in-process (core's sandbox.pty, no server).
//   - Preview proxy: latency of a small GET and throughput of a 64 MiB GET through
//     /preview/{id}/{port}/ of a sandbox with network "none", next to a direct connection to
//     the same server from inside the container (curl's own timing, so no exec cost is counted).
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Kiln, type Pty } from "@kiln/core";
import WebSocket from "ws";
import { measure, percentile, type Series, table } from "./stats.ts";

const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 30);
const KEYSTROKES = Math.max(100, ITERATIONS * 5);
const SERVE = new URL("../packages/server/test/fixtures/serve.ts", import.meta.url).pathname;
const BIG_MIB = 64;

async function startServerProcess(): Promise<{ url: string; key: string; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-terminals-"));
  const child = spawn(process.execPath, [SERVE], {
    env: { ...process.env, KILN_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
  const { url, key } = JSON.parse(line) as { url: string; key: string };
  return {
    url,
    key,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Round trips of one keystroke: send(byte), wait until that byte is echoed. */
async function keystrokes(label: string, send: (b: string) => void, onEcho: (cb: (text: string) => void) => void) {
  let pending: ((text: string) => void) | undefined;
  onEcho((text) => pending?.(text));
  const samples: number[] = [];
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < KEYSTROKES + 10; i++) {
    const letter = letters[i % letters.length] as string;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      pending = (text) => {
        if (text.includes(letter)) resolve();
      };
      send(letter);
    });
    if (i >= 10) samples.push(performance.now() - started); // 10 warm-up keystrokes
  }
  console.error(`  measured ${label}`);
  return { label, samples };
}

export async function terminalBenchmarks(kiln: Kiln): Promise<string[]> {
  const sections: string[] = [];
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
  try {
    const id = (await call("POST", "/v1/sandboxes", { labels: { bench: "1" } })).id as string;
    made.push(id);

    // PTY keystrokes: `cat` in canonical mode; the tty echoes each byte at once.
    const { ptyId } = (await call("POST", `/v1/sandboxes/${id}/pty`, { cols: 80, rows: 24, command: ["cat"] })) as {
      ptyId: string;
    };
    const ws = new WebSocket(`${server.url.replace("http", "ws")}/v1/sandboxes/${id}/pty/${ptyId}`, {
      headers: { authorization: `Bearer ${server.key}` },
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const viaServer = await keystrokes(
      "keystroke -> echo over the PTY WebSocket (server, loopback)",
      (b) => ws.send(Buffer.from(b), { binary: true }),
      (cb) => ws.on("message", (data, binary) => binary && cb(Buffer.from(data as Buffer).toString("latin1"))),
    );
    ws.close();
    const sandbox = await kiln.get(id);
    const pty: Pty = await sandbox.pty.create({ cols: 80, rows: 24, command: ["cat"] });
    const inProcess = await keystrokes(
      "keystroke -> echo with sandbox.pty (in-process)",
      (b) => pty.write(b),
      (cb) => pty.onData((bytes) => cb(Buffer.from(bytes).toString("latin1"))),
    );
    await pty.kill();
    sections.push(
      table("PTY keystroke round trip (target: p50 under 5 ms through the server)", [viaServer, inProcess], inProcess),
    );

    // Preview proxy vs a direct connection inside the container, same Python http.server.
    const web = (await call("POST", "/v1/sandboxes", { labels: { bench: "1" }, network: "none" })).id as string;
    made.push(web);
    const prep = await call("POST", `/v1/sandboxes/${web}/exec`, {
      command: `mkdir -p /workspace/site && cd /workspace/site && echo small > small.txt && head -c ${BIG_MIB * 1024 * 1024} /dev/urandom > big.bin`,
    });
    if (prep.exitCode !== 0) throw new Error(`preparing files failed: ${JSON.stringify(prep)}`);
    await call("POST", `/v1/sandboxes/${web}/processes`, {
      command: "python3 -m http.server 8000 --bind 127.0.0.1",
      cwd: "/workspace/site",
    });
    await call("POST", `/v1/sandboxes/${web}/exec`, {
      command:
        "for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:8000/small.txt && exit 0; sleep 0.1; done; exit 1",
    });
    const preview = (await call("POST", `/v1/sandboxes/${web}/ports/8000/preview`, {})) as {
      url: string;
      token: string;
    };
    const base = preview.url.split("?")[0] as string;
    const headers = { "x-kiln-preview-token": preview.token };
    const proxied = await measure("GET small.txt through /preview/ (server, network none)", ITERATIONS, async () => {
      const started = performance.now();
      const res = await fetch(`${base}small.txt`, { headers });
      if ((await res.text()) !== "small\n") throw new Error("wrong body");
      return performance.now() - started;
    });
    console.error("  measured preview latency");
    const direct = await curlTimes(call, web, "http://127.0.0.1:8000/small.txt", ITERATIONS);
    sections.push(
      table(
        "Preview proxy latency: a small GET",
        [
          proxied,
          { label: "curl to 127.0.0.1:8000 inside the container (direct, curl's time_total)", samples: direct },
        ],
        { label: "", samples: direct },
      ),
    );

    const runs = 5;
    const proxiedMBs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const res = await fetch(`${base}big.bin`, { headers });
      let bytes = 0;
      for await (const chunk of res.body as ReadableStream<Uint8Array>) bytes += chunk.length;
      if (bytes !== BIG_MIB * 1024 * 1024) throw new Error(`got ${bytes} bytes`);
      proxiedMBs.push(BIG_MIB / ((performance.now() - started) / 1000));
    }
    console.error("  measured preview throughput");
    const directOut = await call("POST", `/v1/sandboxes/${web}/exec`, {
      command: `for i in $(seq ${runs}); do curl -s -o /dev/null -w '%{speed_download}\\n' http://127.0.0.1:8000/big.bin; done`,
    });
    const directMBs = String(directOut.stdout)
      .trim()
      .split("\n")
      .map((bytesPerSecond) => Number(bytesPerSecond) / 2 ** 20);
    const mbs = (xs: number[]) =>
      `${percentile(xs, 50).toFixed(0)} MiB/s (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
    sections.push(
      [
        `### Preview proxy throughput: GET of a ${BIG_MIB} MiB file, ${runs} runs`,
        "",
        "| what | p50 |",
        "| --- | ---: |",
        `| through /preview/ (server, network none: agent connection, docker exec stream) | ${mbs(proxiedMBs)} |`,
        `| curl to 127.0.0.1:8000 inside the container (direct) | ${mbs(directMBs)} |`,
        "",
        `Ratio (p50): ${(percentile(proxiedMBs, 50) / percentile(directMBs, 50)).toFixed(2)}x of direct.`,
      ].join("\n"),
    );
  } finally {
    await server.stop();
    await Promise.all(made.map(async (id) => (await kiln.get(id).catch(() => undefined))?.delete().catch(() => {})));
  }
  return sections;
}

/** curl's own time for n GETs from inside the sandbox, in ms (one exec for all of them). */
async function curlTimes(
  call: (method: string, path: string, body?: unknown) => Promise<Record<string, unknown>>,
  id: string,
  url: string,
  n: number,
): Promise<number[]> {
  const out = await call("POST", `/v1/sandboxes/${id}/exec`, {
    command: `for i in $(seq ${n + 2}); do curl -s -o /dev/null -w '%{time_total}\\n' ${url}; done`,
  });
  return String(out.stdout)
    .trim()
    .split("\n")
    .slice(2)
    .map((s) => Number(s) * 1000);
}

export type { Series };

if (import.meta.main) {
  const kiln = new Kiln();
  const { loadavg } = await import("node:os");
  const before = loadavg()[0]?.toFixed(1);
  const body = (await terminalBenchmarks(kiln)).join("\n\n");
  const after = loadavg()[0]?.toFixed(1);
  const report = `# Kiln terminal and preview benchmarks\n\nDate: ${new Date().toISOString()}, load average ${before} at start and ${after} at the end (2 cores shared with other work)\n\n${body}\n`;
  console.log(report);
  const { writeFile } = await import("node:fs/promises");
  await writeFile(new URL("./results/terminals-latest.md", import.meta.url), report);
  await kiln.close();
}
