// `pnpm --filter @kiln/bench bench:network`: what Kiln's egress proxy costs an allow-list
// sandbox, side by side with an "egress" sandbox making the same transfers to the same host.
//
// The host is this machine's own: a network namespace made here at 203.0.113.213 (TEST-NET-3,
// the one special-purpose range the egress filter lets through, because this build machine's
// outside world lives there; the mirrors are at another address of it), routed through the
// engine's host like any outside destination. Both sandboxes are created before the route
// exists, so the egress host guard (which learns the host's attached routes) does not block it.
// Needs root (ip netns). Writes bench/results/network-allow.md.
import { execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { cpus, release } from "node:os";
import { promisify } from "node:util";
import { Kiln } from "@kiln/core";
import { DockerEngine } from "../packages/core/src/engine/docker/docker-engine.ts";
import { measure, type Series, table } from "./stats.ts";

const run = promisify(execFile);
const ROUNDS = Number(process.env.KILN_BENCH_ITERATIONS ?? 5);
const HOST = "203.0.113.213";
const NAME = "bench-host.test";
const ns = `kiln-bench-${process.pid}`;
const veth = `kbn${process.pid % 100000}`;

let image = "";
const engine = new DockerEngine(undefined, {
  firewallImage: async () => image,
  allowProxy: { hosts: { [NAME]: HOST } },
});
const kiln = new Kiln({ engine });
image = await kiln.images.ensure();

const labels = { bench: "network-allow" };
const [egress, allowed] = await Promise.all([
  kiln.create({ network: "egress", labels }),
  kiln.create({ network: { allow: [NAME] }, labels }),
]);

const program = await readFile(new URL("../packages/core/test/fixtures/allow-test-host.py", import.meta.url), "utf8");
const sh = (args: string[]) => run("ip", args);
await sh(["netns", "add", ns]);
let server: ReturnType<typeof spawn> | undefined;
try {
  await sh(["link", "add", `${veth}h`, "type", "veth", "peer", "name", `${veth}n`]);
  await sh(["link", "set", `${veth}n`, "netns", ns]);
  await sh(["addr", "add", "10.252.213.1/30", "dev", `${veth}h`]);
  await sh(["link", "set", `${veth}h`, "up"]);
  await sh(["route", "add", `${HOST}/32`, "dev", `${veth}h`, "via", "10.252.213.2"]);
  await sh(["-n", ns, "addr", "add", "10.252.213.2/30", "dev", `${veth}n`]);
  await sh(["-n", ns, "addr", "add", `${HOST}/32`, "dev", "lo"]);
  await sh(["-n", ns, "link", "set", `${veth}n`, "up"]);
  await sh(["-n", ns, "link", "set", "lo", "up"]);
  await sh(["-n", ns, "route", "add", "default", "via", "10.252.213.1"]);
  server = spawn("ip", ["netns", "exec", ns, "python3", "-c", program], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise<void>((resolve, reject) => {
    server?.stdout?.on("data", (d: Buffer) => d.toString().includes("test-host-ready") && resolve());
    server?.on("exit", () => reject(new Error("the test host exited")));
  });

  /** Seconds for one curl of `url` in `sb` (its own clock: no exec round trip counted). */
  async function download(sb: typeof egress, url: string): Promise<number> {
    const r = await sb.exec(`curl -sS -o /dev/null -w '%{time_total} %{size_download}' ${url}`, { timeoutMs: 300_000 });
    const [seconds, size] = r.stdout.trim().split(" ").map(Number);
    if (r.exitCode !== 0 || size !== 100 * 1024 * 1024) throw new Error(`download failed: ${r.stdout} ${r.stderr}`);
    return (seconds ?? 0) * 1000;
  }
  /** ms for 200 sequential small GETs, each on a new connection (urllib honours http_proxy). */
  async function small(sb: typeof egress, url: string): Promise<number> {
    const script = `import time, urllib.request
t = time.perf_counter()
for _ in range(200):
    assert urllib.request.urlopen("${url}").read().startswith(b"hello")
print((time.perf_counter() - t) * 1000)`;
    const r = await sb.exec(["python3", "-c", script], { timeoutMs: 300_000 });
    if (r.exitCode !== 0) throw new Error(`small requests failed: ${r.stderr}`);
    return Number(r.stdout.trim());
  }

  const big = 100 * 1024 * 1024;
  const rows: Record<string, Series> = {};
  const series = async (label: string, once: () => Promise<number>) => {
    await once(); // warm-up
    rows[label] = await measure(label, ROUNDS, once);
    console.error(`  measured ${label}`);
  };
  // Interleaved per round would be fairer on a loaded machine; the rounds are long, so each
  // series runs its rounds back to back and the pairs run one after the other.
  await series("egress: 100 MB over HTTP", () => download(egress, `http://${HOST}/bytes/${big}`));
  await series("allow-list via proxy: 100 MB over HTTP", () => download(allowed, `http://${NAME}/bytes/${big}`));
  await series("egress: 200 small GETs", () => small(egress, `http://${HOST}/`));
  await series("allow-list via proxy: 200 small GETs", () => small(allowed, `http://${NAME}/`));

  const e100 = rows["egress: 100 MB over HTTP"] as Series;
  const a100 = rows["allow-list via proxy: 100 MB over HTTP"] as Series;
  const eSmall = rows["egress: 200 small GETs"] as Series;
  const aSmall = rows["allow-list via proxy: 200 small GETs"] as Series;
  const p50 = (s: Series) => [...s.samples].sort((a, b) => a - b)[Math.floor(s.samples.length / 2)] ?? Number.NaN;
  const mbps = (s: Series) => (100 / (p50(s) / 1000)).toFixed(0);
  const text = [
    "# Allow-list proxy vs egress",
    "",
    `${new Date().toISOString()}, ${cpus().length} cores, Linux ${release()}, ${ROUNDS} rounds (+1 warm-up) each, host ${HOST} in a netns on this machine.`,
    "",
    table("100 MB download (curl, time_total)", [e100, a100], e100),
    "",
    `Throughput (p50): egress ${mbps(e100)} MB/s, via proxy ${mbps(a100)} MB/s.`,
    "",
    table("200 small GETs, a new connection each (python urllib)", [eSmall, aSmall], eSmall),
    "",
    `Added latency per request (p50): ${((p50(aSmall) - p50(eSmall)) / 200).toFixed(2)} ms.`,
    "",
  ].join("\n");
  console.log(text);
  await writeFile(new URL("./results/network-allow.md", import.meta.url), text);
} finally {
  server?.kill("SIGKILL");
  await sh(["route", "del", `${HOST}/32`]).catch(() => {});
  await sh(["link", "del", `${veth}h`]).catch(() => {});
  await sh(["netns", "del", ns]).catch(() => {});
  await Promise.all([egress.delete(), allowed.delete()]);
  await kiln.close();
}
