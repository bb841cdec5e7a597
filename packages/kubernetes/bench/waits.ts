// The engine's own claim and start paths against kube-sim, without core's agent channel on top:
// what the switch from LIST-polling to watches changes. Sim numbers (API server in this process,
// pods as local Docker containers). Run: node packages/kubernetes/bench/waits.ts [claims] [colds]
import { randomBytes } from "node:crypto";
import { Kiln } from "@kiln/core";
import type { ContainerSpec } from "@kiln/core/engine";
import { startKubeSim } from "@kiln/kube-sim";
import { KubernetesEngine } from "../src/engine.ts";
import { podReady } from "../src/pool.ts";

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
  const poolLag: number[] = [];
  /** Polls `check` every 20 ms from now: when the API first showed the state a wait waits for. */
  const apiSees = (check: () => Promise<boolean>) => {
    const t = performance.now();
    let at = 0;
    let stop = false;
    const done = (async () => {
      while (!at && !stop) {
        if (await check()) at = performance.now() - t;
        else await new Promise((r) => setTimeout(r, 20));
      }
    })();
    return {
      t,
      async at() {
        stop = true;
        await done;
        return at;
      },
    };
  };
  for (let i = 0; i < claims; i++) {
    await pool.filled();
    const t = performance.now();
    const id = await pool.claim(`kiln-bench-${randomBytes(4).toString("hex")}`, { "kiln.kind": "sandbox" });
    claimMs.push(performance.now() - t);
    if (id) made.push(id);
    // How long after the API shows the pool full again does filled() return?
    const api = apiSees(
      async () => (await engine.listPods("kiln.kind=pool,kiln.shape=bench")).filter(podReady).length >= 2,
    );
    await pool.filled();
    const seen = performance.now() - api.t;
    const at = await api.at();
    poolLag.push(at ? Math.max(0, seen - at) : 0);
  }
  console.log(`engine pool claim (pick + PATCH): p50 ${pct(claimMs, 50)} ms, p95 ${pct(claimMs, 95)} ms`);
  console.log(
    `pool.filled() after the API shows the pool full (20 ms probe): p50 ${pct(poolLag, 50)} ms, max ${Math.round(Math.max(...poolLag))} ms`,
  );
  const coldMs: number[] = [];
  const coldLag: number[] = [];
  for (let i = 0; i < colds; i++) {
    const t = performance.now();
    const id = await engine.createContainer({ ...spec, name: `cold-${i}-${randomBytes(3).toString("hex")}` });
    const api = apiSees(async () => (await engine.resolve(id))?.status?.phase === "Running");
    await engine.startContainer(id);
    const seen = performance.now() - api.t;
    coldMs.push(performance.now() - t);
    const at = await api.at();
    coldLag.push(at ? Math.max(0, seen - at) : 0);
    made.push(id);
  }
  console.log(
    `engine cold create until Running: p50 ${pct(coldMs, 50)} ms, max ${Math.max(...coldMs.map(Math.round))} ms; startContainer after the API shows Running: p50 ${pct(coldLag, 50)} ms, max ${Math.round(Math.max(...coldLag))} ms`,
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
