// `node bench/remove-ab.ts IMAGE [rounds]`: the engine's own cost of removing a container that
// stops by itself, two ways, interleaved: the daemon's auto-remove (`docker run --rm`, HostConfig
// AutoRemove) against a client's `wait?condition=not-running` then DELETE (what Kiln's delete()
// does after the agent's `exit`). Plain containers (tini, `sh -c 'read x'`, an attached stdin, no
// network): the line sent on stdin ends them. Prints, at p50: line sent -> the engine's `die`,
// `die` -> `destroy`, and the client's total; the difference is the client round trip after the
// stop, which only an in-daemon removal avoids.
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { DockerEngine } from "@kiln/core/engine";

const IMAGE = process.argv[2];
if (!IMAGE) throw new Error("usage: node bench/remove-ab.ts IMAGE [rounds]");
const ROUNDS = Number(process.argv[3] ?? 16);
const engine = new DockerEngine();
const docker = engine.docker;

interface EngineEvent {
  Action: string;
  Actor: { ID: string };
  timeNano: number;
}
const events: EngineEvent[] = [];
const stream = (await docker.getEvents({ filters: { type: ["container"] } })) as NodeJS.ReadableStream & {
  destroy(): void;
};
let pending = "";
stream.on("data", (chunk: Buffer) => {
  pending += chunk.toString("utf8");
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines.filter(Boolean)) events.push(JSON.parse(line) as EngineEvent);
});

interface Result {
  toDie: number;
  dieToDestroy: number;
  total: number;
}

async function once(autoRemove: boolean): Promise<Result> {
  const container = await docker.createContainer({
    Image: IMAGE,
    Entrypoint: ["/usr/bin/tini", "--"],
    Cmd: ["sh", "-c", "read x"],
    OpenStdin: true,
    AttachStdin: true,
    AttachStdout: true,
    Labels: { "kiln.bench": "remove-ab" },
    HostConfig: { NetworkMode: "none", AutoRemove: autoRemove, LogConfig: { Type: "none", Config: {} } },
  });
  const socket = (await container.attach({
    stream: true,
    stdin: true,
    stdout: true,
    hijack: true,
  })) as unknown as Duplex;
  socket.on("data", () => {});
  socket.on("error", () => {});
  await container.start();
  await new Promise((resolve) => setTimeout(resolve, 150));
  const sentAt = Date.now();
  const started = performance.now();
  if (autoRemove) {
    const removed = container.wait({ condition: "removed" });
    socket.write("go\n");
    await removed;
  } else {
    const stopped = container.wait({ condition: "not-running" });
    socket.write("go\n");
    await stopped;
    await container.remove({ force: true, v: false });
  }
  const total = performance.now() - started;
  socket.destroy();
  for (let i = 0; i < 50 && !events.some((e) => e.Actor.ID === container.id && e.Action === "destroy"); i++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  const at = (action: string) =>
    (events.find((e) => e.Actor.ID === container.id && e.Action === action)?.timeNano ?? Number.NaN) / 1e6;
  return { toDie: at("die") - sentAt, dieToDestroy: at("destroy") - at("die"), total };
}

const results: Record<"auto-remove" | "wait + remove", Result[]> = { "auto-remove": [], "wait + remove": [] };
const load: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  load.push(Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]));
  for (const auto of i % 2 === 0 ? [false, true] : [true, false]) {
    results[auto ? "auto-remove" : "wait + remove"].push(await once(auto));
  }
}
stream.destroy();
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
for (const [name, rs] of Object.entries(results)) {
  console.log(
    `${name.padEnd(14)} line sent -> die ${p50(rs.map((r) => r.toDie)).toFixed(1)} ms, die -> destroy ${p50(rs.map((r) => r.dieToDestroy)).toFixed(1)} ms, client total ${p50(rs.map((r) => r.total)).toFixed(1)} ms`,
  );
}
console.log(`load average (1 min) during the run: ${Math.min(...load)}-${Math.max(...load)}`);
