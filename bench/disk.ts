// Cost of the default disk cap on an engine without storage quotas (loop-mounted ext4 disks,
// packages/core/src/engine/docker/disks.ts): `node bench/disk.ts`.
// Two Kilns side by side, iterations interleaved so machine load hits both alike:
//   - cold: create + first exec + delete, with the cap (default) and without (KILN_LOOP_DISKS=0);
//   - claim: create from a warm pool of 1 + first exec (the pool refills between iterations).
import { Kiln, type Sandbox } from "@kiln/core";
import { percentile } from "./stats.ts";

const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 20);

process.env.KILN_LOOP_DISKS = "0";
const off = new Kiln();
const image = await off.images.ensure();
const offPool = new Kiln({ image, pool: { size: 1 } });
delete process.env.KILN_LOOP_DISKS;
const on = new Kiln({ image });
const onPool = new Kiln({ image, pool: { size: 1 } });
const labels = { bench: "disk" };

async function firstExec(sb: Sandbox): Promise<void> {
  const r = await sb.exec("echo hi");
  if (r.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(r.stdout)}`);
}

async function cold(kiln: Kiln): Promise<number> {
  const started = performance.now();
  const sb = await kiln.create({ labels });
  await firstExec(sb);
  await sb.delete();
  return performance.now() - started;
}

async function claim(kiln: Kiln): Promise<number> {
  await kiln.pool?.filled();
  const started = performance.now();
  const sb = await kiln.create({ labels });
  await firstExec(sb);
  const elapsed = performance.now() - started;
  await sb.delete();
  return elapsed;
}

const samples: Record<string, number[]> = {
  "cold, no cap": [],
  "cold, 4 GiB disk": [],
  "claim, no cap": [],
  "claim, 4 GiB disk": [],
};
const push = (k: string, v: number) => samples[k]?.push(v);
// Warm-up: images, helper container, first spare disk.
await cold(off);
await cold(on);
for (let i = 0; i < ITERATIONS; i++) {
  const order = i % 2 === 0;
  for (const withCap of order ? [false, true] : [true, false]) {
    push(withCap ? "cold, 4 GiB disk" : "cold, no cap", await cold(withCap ? on : off));
  }
  for (const withCap of order ? [false, true] : [true, false]) {
    push(withCap ? "claim, 4 GiB disk" : "claim, no cap", await claim(withCap ? onPool : offPool));
  }
}
const load = (await import("node:fs")).readFileSync("/proc/loadavg", "utf8").trim();
console.log(`| what | n | p50 ms | p95 ms |\n| --- | ---: | ---: | ---: |`);
for (const [k, s] of Object.entries(samples)) {
  console.log(`| ${k} | ${s.length} | ${percentile(s, 50).toFixed(0)} | ${percentile(s, 95).toFixed(0)} |`);
}
console.log(`load average at the end: ${load}`);
await Promise.all([off.close(), on.close(), offPool.close(), onPool.close()]);
