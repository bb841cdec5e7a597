// The engine's own claim and start paths against kube-sim, without core's agent channel on top:
// what the switch from LIST-polling to watches changes. Sim numbers (API server in this process,
// pods as local Docker containers). Run: node packages/kubernetes/bench/waits.ts [claims] [colds]
import { randomBytes } from "node:crypto";
import { Kiln } from "@kiln/core";
import type { ContainerSpec } from "@kiln/core/engine";
import { startKubeSim } from "@kiln/kube-sim";
import { KubernetesEngine } from "../src/engine.ts";

const claims = Number(process.argv[2] ?? 10);
const colds = Number(process.argv[3] ?? 4);
const docker = new Kiln();
const image = await docker.images.ensure();
await docker.close();
const sim = await startKubeSim({ namespaces: ["bench"] });
const engine = new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: "bench", networkPolicy: "enforced" });
const spec: ContainerSpec = {
  name: "bench",
  image,
  labels: { "kiln.kind": "sandbox" },
  env: {},
  cpus: 1,
  memoryMb: 256,
  pids: 256,
  network: "none",
  volumes: [],
};
const pct = (xs: number[], p: number) =>
  Math.round([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number);
const made: string[] = [];
const pool = engine.warmPool({ ...spec, labels: { "kiln.kind": "pool" } }, "bench", 2);
try {
  await pool.filled();
  const claimMs: number[] = [];
  const visibleMs: number[] = [];
  for (let i = 0; i < claims; i++) {
    await pool.filled();
    let t = performance.now();
    const id = await pool.claim(`kiln-bench-${randomBytes(4).toString("hex")}`, { "kiln.kind": "sandbox" });
    claimMs.push(performance.now() - t);
    if (id) made.push(id);
    // How long until the pool sees its replacement Ready, measured from the API's own view.
    t = performance.now();
    await pool.filled();
    visibleMs.push(performance.now() - t);
  }
  console.log(`engine pool claim (pick + PATCH): p50 ${pct(claimMs, 50)} ms, p95 ${pct(claimMs, 95)} ms`);
  console.log(`refill of one member until the pool sees it: p50 ${pct(visibleMs, 50)} ms`);
  const coldMs: number[] = [];
  for (let i = 0; i < colds; i++) {
    const t = performance.now();
    const id = await engine.createContainer({ ...spec, name: `cold-${i}-${randomBytes(3).toString("hex")}` });
    await engine.startContainer(id);
    coldMs.push(performance.now() - t);
    made.push(id);
  }
  console.log(
    `engine cold create until Running: p50 ${pct(coldMs, 50)} ms, max ${Math.max(...coldMs.map(Math.round))} ms`,
  );
  const stopMs: number[] = [];
  for (const id of made.slice(-2)) {
    const t = performance.now();
    await engine.stopContainer(id, 2_000);
    stopMs.push(performance.now() - t);
  }
  console.log(`engine stop (with the /workspace copy where it applies): ${stopMs.map(Math.round).join(", ")} ms`);
} finally {
  await pool.close();
  await Promise.all(made.map((id) => engine.removeContainer(id).catch(() => false)));
  engine.dispose();
  await sim.close();
}
