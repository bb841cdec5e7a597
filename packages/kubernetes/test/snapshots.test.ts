// Engine-neutral snapshots: taken on one engine, restored on another, both ways: Docker (this
// machine's engine) and Kubernetes (kube-sim). Files under /workspace and the home directory and
// the default Python context's variables travel; the manifest names the base image.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError, Kiln, SnapshotNotFoundError } from "@kiln/core";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesEngine } from "../src/engine.ts";
import { DirectorySnapshotStore, restoreSnapshot, takeSnapshot } from "../src/snapshots.ts";
import { runtimeImage } from "./image.ts";

const NAMESPACE = "kiln-snapshots-test";
const LABELS = { "test-run": `k8s-snapshots-${process.pid}` };
let sim: KubeSim;
let engine: KubernetesEngine;
let onK8s: Kiln;
let onDocker: Kiln;
let dir: string;
let store: DirectorySnapshotStore;

beforeAll(async () => {
  const image = await runtimeImage();
  dir = await mkdtemp(join(tmpdir(), "kiln-snapshots-"));
  store = new DirectorySnapshotStore(dir);
  sim = await startKubeSim({ namespaces: [NAMESPACE] });
  engine = new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" });
  onK8s = new Kiln({ engine, image });
  onDocker = new Kiln({ image });
});

afterAll(async () => {
  await onK8s?.close();
  await onDocker?.close();
  engine?.dispose();
  await sim?.close();
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(from: Kiln, to: Kiln, name: string) {
  await using source = await from.create({ labels: LABELS });
  await source.files.write("/workspace/notes/plan.txt", `made for ${name}`);
  await source.exec("mkdir -p ~/.config/tool && echo configured > ~/.config/tool/rc");
  await source.runCode("import math\nanswer = 42\nitems = [1, 2, {'k': 'v'}]\nsquare = lambda x: x * x");
  const manifest = await takeSnapshot(source, store, name);
  expect(manifest).toMatchObject({ format: "kiln-snapshot/v1", name, baseImage: (await source.info()).image });
  expect(manifest.python?.saved).toEqual(expect.arrayContaining(["answer", "items", "math", "square"]));
  await using restored = await restoreSnapshot(to, store, name, { labels: LABELS });
  expect(await restored.files.readText("/workspace/notes/plan.txt")).toBe(`made for ${name}`);
  expect((await restored.exec("cat ~/.config/tool/rc")).stdout).toBe("configured\n");
  const state = await restored.runCode("(answer, items[2]['k'], square(7), math.floor(2.5))");
  expect(state.results[0]?.text).toBe("(42, 'v', 49, 2)");
}

describe("engine-neutral snapshots", () => {
  it("Docker -> Kubernetes", async () => {
    await roundTrip(onDocker, onK8s, "docker-to-k8s");
  });

  it("Kubernetes -> Docker", async () => {
    await roundTrip(onK8s, onDocker, "k8s-to-docker");
  });

  it("the directory store: lists, refuses a taken name, deletes", async () => {
    expect((await store.list()).map((m) => m.name)).toEqual(["docker-to-k8s", "k8s-to-docker"]);
    await using sb = await onK8s.create({ labels: LABELS });
    await expect(takeSnapshot(sb, store, "docker-to-k8s")).rejects.toThrow(ConflictError);
    await store.delete("docker-to-k8s");
    await expect(store.delete("docker-to-k8s")).rejects.toThrow(SnapshotNotFoundError);
    await expect(restoreSnapshot(onK8s, store, "docker-to-k8s")).rejects.toThrow(SnapshotNotFoundError);
  });
});
