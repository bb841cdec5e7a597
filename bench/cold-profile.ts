// `node bench/cold-profile.ts [rounds]`: where the time of a cold sandbox's full cycle goes, next
// to `docker run --rm`. Client-side marks (create resolved, exec answered, delete resolved) and the
// engine's own event times (create, attach, start, kill, die, destroy, rename) for each container,
// as offsets in ms from the moment the client began. Rounds alternate Kiln and docker run.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Kiln } from "@kiln/core";
import { DockerEngine } from "@kiln/core/engine";

const run = promisify(execFile);
const ROUNDS = Number(process.argv[2] ?? 10);

// The engine's calls, timed: a Proxy around a DockerEngine records when each began and ended.
const inner = new DockerEngine();
let calls: { name: string; start: number; end: number }[] = [];
const TIMED = new Set([
  "createContainer",
  "attachAgent",
  "startContainer",
  "renameContainer",
  "removeContainer",
  "openProcess",
]);
const engine = new Proxy(inner, {
  get(target, prop, receiver) {
    const value = Reflect.get(target, prop, receiver);
    if (typeof value !== "function") return value;
    if (!TIMED.has(String(prop))) return value.bind(target);
    return async (...args: unknown[]) => {
      const start = performance.now();
      const out = await value.apply(target, args);
      const end = performance.now();
      calls.push({ name: String(prop), start, end });
      if (prop === "attachAgent" && out) {
        const channel = out as { stream: NodeJS.EventEmitter };
        channel.stream.once("data", () =>
          calls.push({ name: "agent first bytes (hello reply)", start: performance.now(), end: performance.now() }),
        );
      }
      return out;
    };
  },
});
const kiln = new Kiln({ engine });
const image = await kiln.images.ensure();
const docker = inner.docker;

interface EngineEvent {
  Type: string;
  Action: string;
  id?: string;
  Actor?: { ID: string; Attributes?: Record<string, string> };
  timeNano: number;
}
const events: EngineEvent[] = [];
const stream = (await docker.getEvents({ filters: { type: ["container"] } })) as NodeJS.ReadableStream;
let pending = "";
stream.on("data", (chunk: Buffer) => {
  pending += chunk.toString("utf8");
  let nl = pending.indexOf("\n");
  while (nl >= 0) {
    const line = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (line) events.push(JSON.parse(line) as EngineEvent);
    nl = pending.indexOf("\n");
  }
});

/** Wall clock in ns, to line client marks up with the engine's timeNano. */
const nowNs = () => BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor((performance.now() % 1) * 1e6));

type Marks = Record<string, number>;
const phases: Record<string, Marks[]> = { kiln: [], docker: [] };

function engineMarks(id: string, t0: number, marks: Marks): void {
  for (const e of events) {
    const eid = e.Actor?.ID ?? e.id;
    if (eid !== id) continue;
    const action = e.Action.split(":")[0] as string;
    const at = e.timeNano / 1e6 - t0;
    const key = `engine ${action}`;
    if (marks[key] === undefined) marks[key] = at;
  }
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 300)); // the event stream catches up
}

async function kilnRound(): Promise<void> {
  const t0 = Date.now();
  const p0 = performance.now();
  const marks: Marks = {};
  calls = [];
  const sandbox = await kiln.create({ labels: { bench: "1" } });
  marks["client create resolved"] = performance.now() - p0;
  const result = await sandbox.exec("echo hi");
  if (result.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(result.stdout)}`);
  marks["client exec answered"] = performance.now() - p0;
  await sandbox.delete();
  marks["client delete resolved (total)"] = performance.now() - p0;
  for (const c of calls) {
    marks[`client ${c.name} sent`] ??= c.start - p0;
    marks[`client ${c.name} done`] ??= c.end - p0;
  }
  await settle();
  engineMarks(sandbox.id, t0, marks);
  phases.kiln?.push(marks);
}

async function dockerRound(): Promise<void> {
  const name = `kiln-bench-profile-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const t0 = Date.now();
  const p0 = performance.now();
  const marks: Marks = {};
  const { stdout } = await run("docker", ["run", "--rm", "--name", name, "--network", "none", image, "echo", "hi"]);
  if (stdout !== "hi\n") throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
  marks["client exited (total)"] = performance.now() - p0;
  await settle();
  const created = events.find((e) => e.Action === "create" && e.Actor?.Attributes?.name === name);
  if (created) engineMarks(created.Actor?.ID ?? "", t0, marks);
  phases.docker?.push(marks);
}

void nowNs;
for (let i = 0; i < 2; i++) {
  await kilnRound();
  await dockerRound();
}
phases.kiln = [];
phases.docker = [];
for (let i = 0; i < ROUNDS; i++) {
  if (i % 2 === 0) {
    await kilnRound();
    await dockerRound();
  } else {
    await dockerRound();
    await kilnRound();
  }
}

/** Per-round durations between marks, so one slow round does not shift every later median. */
const spans: Record<string, [string, string, string][]> = {
  kiln: [
    ["before the engine's create (client, API call)", "", "engine create"],
    ["create -> start done (attach, start)", "engine create", "client startContainer done"],
    ["start -> agent's hello reply", "client startContainer done", "client agent first bytes (hello reply) done"],
    ["hello -> create() resolved", "client agent first bytes (hello reply) done", "client create resolved"],
    ["first exec round trip", "client create resolved", "client exec answered"],
    ["delete: exec answered -> engine die", "client exec answered", "engine die"],
    ["delete: die -> destroy", "engine die", "engine destroy"],
    ["delete() total", "client exec answered", "client delete resolved (total)"],
    ["total", "", "client delete resolved (total)"],
  ],
  docker: [
    ["before the engine's create (CLI start, API call)", "", "engine create"],
    ["create -> start (attach, start)", "engine create", "engine start"],
    ["start -> die (echo runs, exits)", "engine start", "engine die"],
    ["die -> destroy (auto-remove)", "engine die", "engine destroy"],
    ["destroy -> CLI exit", "engine destroy", "client exited (total)"],
    ["total", "", "client exited (total)"],
  ],
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
};
for (const [who, rounds] of Object.entries(phases)) {
  const keys = new Map<string, number[]>();
  for (const m of rounds) for (const [k, v] of Object.entries(m)) keys.set(k, [...(keys.get(k) ?? []), v]);
  const rows = [...keys.entries()].map(([k, v]) => [k, median(v), v.length] as const).sort((a, b) => a[1] - b[1]);
  console.log(`\n${who} (n=${rounds.length}, median ms from the client's start)`);
  for (const [k, v, n] of rows)
    console.log(`  ${v.toFixed(1).padStart(8)}  ${k}${n < rounds.length ? ` (in ${n})` : ""}`);
}
for (const [who, list] of Object.entries(spans)) {
  console.log(`\n${who}: phase durations (median of per-round differences, ms)`);
  for (const [label, from, to] of list) {
    const xs = (phases[who] ?? [])
      .map((m) => (m[to] ?? Number.NaN) - (from === "" ? 0 : (m[from] ?? Number.NaN)))
      .filter((x) => !Number.isNaN(x));
    console.log(`  ${median(xs).toFixed(1).padStart(8)}  ${label}`);
  }
}
(stream as unknown as { destroy(): void }).destroy();
await kiln.close();
