// Restart after stop and Kiln's volumes on the Kubernetes engine, against kube-sim (whose
// PersistentVolumeClaims are Docker volumes: tests/kube-sim/src/storage.ts).
import { ConflictError, InvalidArgumentError, Kiln, VolumeNotFoundError } from "@kiln/core";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimName } from "../src/claims.ts";
import { KubernetesEngine, podStatus } from "../src/engine.ts";
import { runtimeImage } from "./image.ts";

const NAMESPACE = "kiln-persist-test";
let sim: KubeSim;
let engine: KubernetesEngine;
let kiln: Kiln;
let core: CoreV1Api;

beforeAll(async () => {
  const image = await runtimeImage();
  sim = await startKubeSim({ namespaces: [NAMESPACE] });
  engine = new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" });
  kiln = new Kiln({ engine, image });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await kiln?.close();
  engine?.dispose();
  await sim?.close();
});

const podsOf = async (id: string) =>
  (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `kiln.id=${id}` })).items;

describe("restart after stop", () => {
  it("stop keeps /workspace in a claim; start runs a new pod with the same id, name, labels and files", async () => {
    const sb = await kiln.create({ name: "restartable", labels: { team: "t1" }, env: { KEEP: "env kept" } });
    try {
      await sb.files.write("notes/keep.txt", "still here");
      await sb.exec("mkdir -p /workspace/empty-dir && echo gone > /tmp/scratch");
      const before = (await podsOf(sb.id))[0]?.metadata?.name;
      await sb.stop();
      await sb.stop();
      expect((await sb.info()).state).toBe("stopped");
      await sb.start();
      await sb.start();
      expect((await sb.info()).state).toBe("running");
      expect(await sb.files.readText("notes/keep.txt")).toBe("still here");
      expect((await sb.exec("test -d /workspace/empty-dir && echo yes")).stdout).toBe("yes\n");
      // Only /workspace is kept: /tmp starts empty again.
      expect((await sb.exec("cat /tmp/scratch 2>/dev/null || echo none")).stdout).toBe("none\n");
      expect((await sb.exec("echo $KEEP; id -u")).stdout).toBe("env kept\n1000\n");
      expect((await sb.runCode("1 + 1")).results[0]?.text).toBe("2");
      // One pod for the id, a new one; found by name and label as before.
      const pods = await podsOf(sb.id);
      expect(pods).toHaveLength(1);
      expect(pods[0]?.metadata?.name).not.toBe(before);
      expect((await kiln.get("restartable")).id).toBe(sb.id);
      expect((await kiln.list({ labels: { team: "t1" } })).map((s) => s.id)).toEqual([sb.id]);
      // A second stop/start needs no copy: /workspace is the claim itself now.
      await sb.files.write("second.txt", "2");
      await sb.stop();
      await sb.start();
      expect(await sb.files.readText("second.txt")).toBe("2");
      expect(await sb.files.readText("notes/keep.txt")).toBe("still here");
    } finally {
      await sb.delete();
    }
    // Delete takes every pod of the id and the workspace claim.
    expect(await podsOf(sb.id)).toHaveLength(0);
    const claims = await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
    expect(claims.items.filter((c) => !c.metadata?.deletionTimestamp).map((c) => c.metadata?.name)).not.toContain(
      `kiln-ws-${sb.id}`,
    );
  });

  it("a sandbox claimed from the warm pool (a ReplicaSet's pod, restartPolicy Always) stops and starts too", async () => {
    const pooled = new Kiln({ engine, image: await runtimeImage(), pool: { size: 1 } });
    try {
      await pooled.pool?.filled();
      const sb = await pooled.create();
      const claimed = (await podsOf(sb.id))[0];
      expect(claimed?.metadata?.labels?.["kiln.pooled"]).toBeDefined();
      await sb.files.write("from-pool.txt", "kept");
      await sb.stop();
      expect((await sb.info()).state).toBe("stopped");
      await sb.start();
      expect(await sb.files.readText("from-pool.txt")).toBe("kept");
      const now = (await podsOf(sb.id))[0];
      expect(now?.spec?.restartPolicy).toBe("Never");
      expect(now?.metadata?.ownerReferences ?? []).toEqual([]);
      await sb.delete();
    } finally {
      await pooled.close();
    }
  });

  it("a delete racing a start: the sandbox is gone afterwards, whichever lands first", async () => {
    for (let round = 0; round < 3; round++) {
      const sb = await kiln.create();
      await sb.files.write("x.txt", "x");
      await sb.stop();
      const [started, deleted] = await Promise.allSettled([sb.start(), sb.delete()]);
      expect(deleted.status).toBe("fulfilled");
      if (started.status === "rejected") expect(String(started.reason)).toMatch(/not found|No sandbox/i);
      await expect.poll(async () => (await podsOf(sb.id)).length, { timeout: 20_000 }).toBe(0);
      await expect(kiln.get(sb.id)).rejects.toThrow(/not found|No sandbox/i);
    }
  });

  it("a pod still starting is not a stopped sandbox: sweeps during a create leave autoDeleteMs: 0 alone", async () => {
    expect(podStatus({ status: { phase: "Pending" } })).toBe("restarting");
    expect(
      podStatus({
        status: {
          phase: "Pending",
          containerStatuses: [
            {
              name: "sandbox",
              image: "x",
              imageID: "",
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: "ErrImagePull" } },
            },
          ],
        },
      }),
    ).toBe("created");
    let sweeping = true;
    const sweeps = (async () => {
      let n = 0;
      while (sweeping) {
        await kiln.sweep();
        n++;
      }
      return n;
    })();
    try {
      const sb = await kiln.create({ autoDeleteMs: 0 });
      await sb.files.write("f.txt", "f");
      expect((await sb.info()).state).toBe("running");
      await sb.delete();
    } finally {
      sweeping = false;
      expect(await sweeps).toBeGreaterThan(0);
    }
  });

  it("two concurrent starts of one stopped sandbox make one pod", async () => {
    await using sb = await kiln.create();
    await sb.files.write("a.txt", "a");
    await sb.stop();
    const other = new Kiln({
      engine: new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" }),
    });
    try {
      const again = await other.get(sb.id);
      await Promise.all([sb.start(), again.start()]);
      const live = (await podsOf(sb.id)).filter((p) => p.status?.phase !== "Failed" && p.status?.phase !== "Succeeded");
      expect(live).toHaveLength(1);
      expect(await sb.files.readText("a.txt")).toBe("a");
      expect(await again.files.readText("a.txt")).toBe("a");
    } finally {
      await other.close();
    }
  });
});

describe("volumes are PersistentVolumeClaims", () => {
  it("create/list/delete, mounted read-write and read-only, refused while mounted, hostile names", async () => {
    const name = "Shared_Data.v1";
    const created = await kiln.volumes.create(name);
    expect(created.name).toBe(name);
    await expect(kiln.volumes.create(name)).rejects.toThrow(ConflictError);
    expect((await kiln.volumes.list()).map((v) => v.name)).toContain(name);
    // Upper case and "_" are fine in Kiln's names; the claim's name is a valid, distinct DNS name.
    expect(claimName(`kiln-vol-${name}`)).toMatch(/^kiln-vol-shared-data-v1-[0-9a-f]{12}$/);
    expect(claimName("kiln-vol-shared-data-v1")).not.toBe(claimName(`kiln-vol-${name}`));
    await kiln.volumes.create("shared-data-v1");
    expect((await kiln.volumes.list()).map((v) => v.name)).toEqual(expect.arrayContaining([name, "shared-data-v1"]));
    await kiln.volumes.delete("shared-data-v1");

    const writer = await kiln.create({ volumes: [{ volume: name, mountPath: "/data" }] });
    await writer.exec("echo persisted > /data/f");
    const reader = await kiln.create({ volumes: [{ volume: name, mountPath: "/mnt/in", readOnly: true }] });
    expect((await reader.exec("cat /mnt/in/f")).stdout).toBe("persisted\n");
    expect((await reader.exec("touch /mnt/in/x")).exitCode).not.toBe(0);
    await expect(kiln.volumes.delete(name)).rejects.toThrow(ConflictError);
    await writer.stop();
    // A stopped sandbox still mounts it (as on Docker).
    await expect(kiln.volumes.delete(name)).rejects.toThrow(ConflictError);
    await writer.start();
    expect((await writer.exec("cat /data/f")).stdout).toBe("persisted\n");
    await writer.delete();
    await reader.delete();
    await kiln.volumes.delete(name);
    expect((await kiln.volumes.list()).map((v) => v.name)).not.toContain(name);
    await expect(kiln.volumes.delete(name)).rejects.toThrow(VolumeNotFoundError);

    for (const bad of ["../bad", "", "a/b", "-lead", "x".repeat(64), "sp ace", "ünï"]) {
      await expect(kiln.volumes.create(bad)).rejects.toThrow(InvalidArgumentError);
    }
    await expect(kiln.create({ volumes: [{ volume: "never-made", mountPath: "/data" }] })).rejects.toThrow(
      /No volume named "never-made"/,
    );
  });

  it("a create racing a delete: never both succeed, and nothing is left waiting", async () => {
    for (let round = 0; round < 3; round++) {
      const name = `race-${round}`;
      await kiln.volumes.create(name);
      const [made, deleted] = await Promise.allSettled([
        kiln.create({ volumes: [{ volume: name, mountPath: "/data" }] }),
        kiln.volumes.delete(name),
      ]);
      if (made.status === "fulfilled") {
        // The sandbox got the volume: the delete was refused, and the volume works.
        expect(deleted.status).toBe("rejected");
        expect((deleted as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
        expect((await made.value.exec("touch /data/ok && echo ok")).stdout).toBe("ok\n");
        await made.value.delete();
        await kiln.volumes.delete(name);
      } else {
        expect(String(made.reason)).toMatch(/No volume named "race-\d"/);
        // Both may fail (the delete saw the create's pod before it went); then the volume stays.
        if (deleted.status === "rejected") {
          expect((deleted as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
          await kiln.volumes.delete(name);
        }
      }
      // No sandbox pod is left behind waiting for a claim that is gone.
      const pending = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: "kiln.kind" })).items.filter(
        (p) => p.status?.phase === "Pending" && !p.metadata?.deletionTimestamp,
      );
      expect(pending).toEqual([]);
    }
  });
});
