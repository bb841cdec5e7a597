// `node bench/cold-delete-ab.ts OTHER_CORE_INDEX [rounds]`: delete() alone (after create + one
// exec), of another checkout's @kiln/core and of this one, interleaved round by round (order
// alternating), with the engine's `die` exit code of each container. Prints p50s and the median
// per-round ratio; a narrower lens than cold-ab.ts for changes to the delete path.
import { readFileSync } from "node:fs";
import { Kiln as After } from "@kiln/core";
import type { DockerEngine } from "@kiln/core/engine";

const other = process.argv[2];
if (!other) throw new Error("usage: node bench/cold-delete-ab.ts /path/to/other/packages/core/src/index.ts [rounds]");
const { Kiln: Before } = (await import(other)) as { Kiln: typeof After };
const ROUNDS = Number(process.argv[3] ?? 20);
const before = new Before();
const after = new After();
await before.images.ensure();
await after.images.ensure();
const docker = (after.engine as unknown as DockerEngine).docker;
const events = (await docker.getEvents({
  filters: { type: ["container"], event: ["die", "kill"] },
})) as NodeJS.ReadableStream & {
  destroy(): void;
};
const seen = new Map<string, string[]>();
let pending = "";
events.on("data", (chunk: Buffer) => {
  pending += chunk.toString("utf8");
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines.filter(Boolean)) {
    const e = JSON.parse(line) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> } };
    const list = seen.get(e.Actor.ID) ?? [];
    list.push(e.Action === "die" ? `die:${e.Actor.Attributes.exitCode}` : e.Action);
    seen.set(e.Actor.ID, list);
  }
});

const cycle = async (kiln: After) => {
  const sandbox = await kiln.create({ labels: { bench: "1" } });
  await sandbox.exec("echo hi");
  const started = performance.now();
  await sandbox.delete();
  return { ms: performance.now() - started, id: sandbox.id };
};
const times = { before: [] as number[], after: [] as number[] };
const ratios: number[] = [];
const ids = { before: [] as string[], after: [] as string[] };
const load: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  load.push(Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]));
  const order = i % 2 === 0 ? (["before", "after"] as const) : (["after", "before"] as const);
  const round: Record<string, number> = {};
  for (const which of order) {
    const r = await cycle(which === "before" ? before : after);
    times[which].push(r.ms);
    ids[which].push(r.id);
    round[which] = r.ms;
  }
  ratios.push((round.after as number) / (round.before as number));
}
await new Promise((r) => setTimeout(r, 500));
events.destroy();
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const which of ["before", "after"] as const) {
  const tally = new Map<string, number>();
  for (const id of ids[which]) {
    const key = (seen.get(id) ?? ["?"]).join(",");
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  console.log(
    `${which.padEnd(7)} delete() p50 ${p50(times[which]).toFixed(1)} ms  events ${[...tally].map(([k, n]) => `${k} x${n}`).join("; ")}`,
  );
}
console.log(`median per-round ratio after/before ${p50(ratios).toFixed(2)}x`);
console.log(`load average (1 min) during the run: ${Math.min(...load)}-${Math.max(...load)}`);
await before.close?.();
await after.close?.();
