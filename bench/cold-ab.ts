// `node bench/cold-ab.ts OTHER_CORE_INDEX [rounds]`: the cold cycle (create + exec('echo hi') +
// delete) of another checkout's @kiln/core (e.g. a base commit unpacked with `git archive`, its
// node_modules linked to this one's) and of this one, each with its own runtime image, next to
// `docker run --rm IMAGE echo hi`, interleaved round by round so a loaded machine weighs on all
// three alike. Prints p50s, the median of the per-round ratios and the load average.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { Kiln as After } from "@kiln/core";

const other = process.argv[2];
if (!other) throw new Error("usage: node bench/cold-ab.ts /path/to/other/packages/core/src/index.ts [rounds]");
const { Kiln: Before } = (await import(other)) as { Kiln: typeof After };
const run = promisify(execFile);
const ROUNDS = Number(process.argv[3] ?? 20);
const before = new Before();
const after = new After();
const imageBefore = await before.images.ensure();
const imageAfter = await after.images.ensure();
console.error(`before ${imageBefore}, after ${imageAfter}`);

const cycle = (kiln: After) => async () => {
  const started = performance.now();
  const sandbox = await kiln.create({ labels: { bench: "1" } });
  const result = await sandbox.exec("echo hi");
  if (result.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(result.stdout)}`);
  await sandbox.delete();
  return performance.now() - started;
};
const dockerRun = async () => {
  const started = performance.now();
  const { stdout } = await run("docker", ["run", "--rm", "--network", "none", imageAfter, "echo", "hi"]);
  if (stdout !== "hi\n") throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
  return performance.now() - started;
};
const rows: [string, () => Promise<number>][] = [
  ["before", cycle(before)],
  ["after", cycle(after)],
  ["docker run --rm", dockerRun],
];
for (const [, once] of rows) await once();
const samples: number[][] = rows.map(() => []);
const loads: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  for (let k = 0; k < rows.length; k++) {
    const j = (i + k) % rows.length;
    samples[j]?.push(await (rows[j] as [string, () => Promise<number>])[1]());
  }
  loads.push(Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
const base = median(samples[2] as number[]);
for (const [j, [label]] of rows.entries()) {
  const xs = samples[j] as number[];
  const perRound = median(xs.map((x, i) => x / ((samples[2] as number[])[i] as number)));
  console.log(
    `${label.padEnd(16)} p50 ${median(xs).toFixed(0).padStart(6)} ms  ${(median(xs) / base).toFixed(2)}x  (median per-round ratio ${perRound.toFixed(2)}x)`,
  );
}
console.log(`load average (1 min) during the run: ${Math.min(...loads)}-${Math.max(...loads)}`);
await before.close();
await after.close();
