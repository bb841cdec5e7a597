// Cost of the default disk cap on an engine without storage quotas (loop-mounted ext4 disks,
// packages/core/src/engine/docker/disks.ts). `pnpm bench` runs this as the "disk" section;
// alone: `node bench/disk.ts`. Two Kilns side by side, iterations interleaved so machine load
// hits both alike:
//   - cold: create + first exec + delete, with the 4 GiB disk (default) and without (KILN_LOOP_DISKS=0);
//   - claim: create from a warm pool of 1 + first exec (the pool refills between iterations).
import { readFileSync } from "node:fs";
import { Kiln, type Sandbox } from "@kiln/core";
import { type Series, table, timeOnly } from "./stats.ts";

const ITERATIONS = Number(process.env.KILN_BENCH_DISK_ITERATIONS ?? process.env.KILN_BENCH_ITERATIONS ?? 20);
const labels = { bench: "disk" };

async function firstExec(sb: Sandbox): Promise<void> {
  const r = await sb.exec("echo hi");
  if (r.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(r.stdout)}`);
}

function cold(kiln: Kiln): Promise<number> {
  return timeOnly(async () => {
    const sb = await kiln.create({ labels });
    await firstExec(sb);
    await sb.delete();
  });
}

async function claim(kiln: Kiln): Promise<number> {
  await kiln.pool?.filled();
  let made: Sandbox | undefined;
  return timeOnly(
    async () => {
      made = await kiln.create({ labels });
      await firstExec(made);
    },
    async () => made?.delete(),
  );
}

export async function diskBenchmarks(): Promise<string[]> {
  const previous = process.env.KILN_LOOP_DISKS;
  process.env.KILN_LOOP_DISKS = "0";
  const off = new Kiln();
  const image = await off.images.ensure();
  const offPool = new Kiln({ image, pool: { size: 1 } });
  if (previous === undefined) delete process.env.KILN_LOOP_DISKS;
  else process.env.KILN_LOOP_DISKS = previous;
  const on = new Kiln({ image });
  const onPool = new Kiln({ image, pool: { size: 1 } });
  const capped = (await on.engine.info()).storage;
  try {
    const rows: Record<string, Series> = {};
    const row = (label: string) => {
      rows[label] ??= { label, samples: [] };
      return rows[label];
    };
    // Warm-up: image, helper container and its channel, the image's template, a spare disk.
    await cold(off);
    await cold(on);
    for (let i = 0; i < ITERATIONS; i++) {
      const order = i % 2 === 0 ? [false, true] : [true, false];
      for (const cap of order) row(cap ? "cold, 4 GiB disk" : "cold, no cap").samples.push(await cold(cap ? on : off));
      for (const cap of order) {
        row(cap ? "claim, 4 GiB disk" : "claim, no cap").samples.push(await claim(cap ? onPool : offPool));
      }
    }
    const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const title = (what: string) => `${what} with the default disk cap (${capped}; load average ${load})`;
    return [
      table(
        title("Cold create + first exec + delete"),
        [row("cold, no cap"), row("cold, 4 GiB disk")],
        row("cold, no cap"),
      ),
      table(title("Pool claim + first exec"), [row("claim, no cap"), row("claim, 4 GiB disk")], row("claim, no cap")),
    ];
  } finally {
    await Promise.all([off.close(), on.close(), offPool.close(), onPool.close()]);
  }
}

if (import.meta.main) console.log((await diskBenchmarks()).join("\n\n"));
