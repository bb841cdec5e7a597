// Claim latency, pool refill and exec-channel numbers of the Kubernetes engine against kube-sim
// (sim numbers: an API server in this Node process, pods as local Docker containers; not a
// cluster). Run: node packages/kubernetes/bench/claims.ts [poolSize] [claims]
import { Kiln } from "@kiln/core";
import { startKubeSim } from "@kiln/kube-sim";
import { KubernetesEngine } from "../src/engine.ts";
import { openExecChannel } from "../src/exec.ts";

const poolSize = Number(process.argv[2] ?? 4);
const claims = Number(process.argv[3] ?? 12);
const docker = new Kiln();
const image = await docker.images.ensure();
await docker.close();
const sim = await startKubeSim({ namespaces: ["bench"] });
const engine = new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: "bench", networkPolicy: "enforced" });
const kiln = new Kiln({ engine, image, pool: { size: poolSize } });
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const made = [];
try {
  let t = performance.now();
  await kiln.pool?.filled();
  console.log(`pool of ${poolSize} filled from nothing: ${Math.round(performance.now() - t)} ms`);
  const claimMs: number[] = [];
  const firstCallMs: number[] = [];
  for (let i = 0; i < claims; i++) {
    await kiln.pool?.filled();
    t = performance.now();
    const sb = await kiln.create();
    claimMs.push(performance.now() - t);
    t = performance.now();
    await sb.exec("true");
    firstCallMs.push(performance.now() - t);
    made.push(sb);
  }
  console.log(
    `sequential claims (pool refilled between): p50 ${Math.round(pct(claimMs, 50))} ms, p95 ${Math.round(pct(claimMs, 95))} ms, max ${Math.round(Math.max(...claimMs))} ms; first exec after claim p50 ${Math.round(pct(firstCallMs, 50))} ms`,
  );
  await kiln.pool?.filled();
  t = performance.now();
  const burst = await Promise.all(Array.from({ length: poolSize }, () => kiln.create()));
  console.log(
    `${poolSize} concurrent claims: ${Math.round(performance.now() - t)} ms for all (one ReplicaSet, 409s retried)`,
  );
  made.push(...burst);
  t = performance.now();
  await kiln.pool?.filled();
  console.log(`refill of ${poolSize} members after the burst: ${Math.round(performance.now() - t)} ms`);
  const pods = await Promise.all(
    made.slice(0, 8).map(async (s) => (await engine.resolve(s.id))?.metadata?.name as string),
  );
  const openMs: number[] = [];
  for (const pod of pods) {
    t = performance.now();
    const ch = await openExecChannel(engine.target(pod), ["cat"]);
    openMs.push(performance.now() - t);
    ch.close();
  }
  console.log(
    `exec WebSocket open (to the first output frame): p50 ${Math.round(pct(openMs, 50))} ms, max ${Math.round(Math.max(...openMs))} ms`,
  );
  // Cold creates (no pool): pod create, the wait for Running, the agent channel.
  const cold = new Kiln({ engine, image });
  const coldMs: number[] = [];
  for (let i = 0; i < 4; i++) {
    t = performance.now();
    const sb = await cold.create();
    coldMs.push(performance.now() - t);
    made.push(sb);
  }
  await cold.close();
  console.log(
    `sequential cold creates: p50 ${Math.round(pct(coldMs, 50))} ms, max ${Math.round(Math.max(...coldMs))} ms`,
  );
  t = performance.now();
  await engine.listPods("kiln.kind");
  console.log(`one LIST of ${made.length + poolSize} Kiln pods: ${Math.round(performance.now() - t)} ms`);
} finally {
  await Promise.all(made.map((s) => s.delete().catch(() => {})));
  await kiln.close();
  engine.dispose();
  await sim.close();
}
