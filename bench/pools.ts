// Warm pools per shape (`pnpm bench` runs this as the "pools" section; alone: `node bench/pools.ts`).
// Create from a snapshot to a first result (runCode('1+1')):
//   - claimed from a pool of that snapshot (`pool: [{ size }, { size, snapshot }]`),
//   - claimed from the default pool (the target: a snapshot-pool claim within 2x of this),
//   - cold (`create({ snapshot })` without a pool),
//   - `docker run` of the committed snapshot image running the same code (the baseline).
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { Kiln, type Sandbox } from "@kiln/core";
import { measure, percentile, type Series, table, timeOnly } from "./stats.ts";

const run = promisify(execFile);
const ITERATIONS = Number(process.env.KILN_BENCH_POOL_ITERATIONS ?? process.env.KILN_BENCH_ITERATIONS ?? 10);

async function firstResult(sb: Sandbox): Promise<void> {
  const result = await sb.runCode("1 + 1");
  if (result.results[0]?.text !== "2") throw new Error(`runCode gave ${JSON.stringify(result.results)}`);
}

export async function poolBenchmarks(): Promise<string[]> {
  const setup = new Kiln();
  const image = await setup.images.ensure();
  const snapshot = `bench-pool-${process.pid}`;
  const source = await setup.create({ labels: { bench: "1" } });
  await source.runCode("import pandas as pd\ndf = pd.DataFrame({'a': range(1000)})");
  await source.snapshot(snapshot);
  await source.delete();
  const kiln = new Kiln({ image, pool: [{ size: 1 }, { size: 1, snapshot }] });
  try {
    await kiln.pool?.filled();
    const claim = (options: Parameters<Kiln["create"]>[0]) => async () => {
      await kiln.pool?.filled(); // not counted: every sample is a claim, never a cold fallback
      let sb: Sandbox | undefined;
      return timeOnly(
        async () => {
          sb = await kiln.create({ ...options, labels: { bench: "1" } });
          await firstResult(sb);
        },
        () => sb?.delete() ?? Promise.resolve(),
      );
    };
    const series = async (label: string, once: () => Promise<number>): Promise<Series> => {
      await once(); // warm-up
      const s = await measure(label, ITERATIONS, once);
      console.error(`  measured ${label}`);
      return s;
    };
    const snapshotPool = await series("create({ snapshot }) claimed from its pool + runCode", claim({ snapshot }));
    const defaultPool = await series("create() claimed from the default pool + runCode", claim({}));
    const cold = await series("create({ snapshot }) cold + runCode", async () => {
      let sb: Sandbox | undefined;
      return timeOnly(
        async () => {
          sb = await setup.create({ snapshot, labels: { bench: "1" } });
          await firstResult(sb);
        },
        () => sb?.delete() ?? Promise.resolve(),
      );
    });
    const dockerRun = await series("docker run of the snapshot image + python3 -c 'print(1+1)'", () =>
      timeOnly(async () => {
        const { stdout } = await run("docker", [
          "run",
          "--rm",
          "--network",
          "none",
          `kiln-snapshot:${snapshot}`,
          "python3",
          "-c",
          "print(1+1)",
        ]);
        if (stdout !== "2\n") throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
      }),
    );
    const ratio = percentile(snapshotPool.samples, 50) / percentile(defaultPool.samples, 50);
    return [
      `${table("Create from a snapshot to a first result: snapshot pool vs default pool vs cold vs docker run", [snapshotPool, defaultPool, cold, dockerRun], dockerRun)}\n\nSnapshot-pool claim / default-pool claim (p50): ${ratio.toFixed(2)}x (target: within 2x).`,
    ];
  } finally {
    await kiln.close();
    await setup.snapshots.delete(snapshot).catch(() => {});
    await setup.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sections = await poolBenchmarks();
  const report = sections.join("\n\n");
  console.log(report);
  await writeFile(new URL("./results/pools-latest.md", import.meta.url), `${report}\n`);
}
