// The ReplicaSet controller as a warm pool: N Ready pods, a claim relabels one out of the
// selector (released: no ownerReference) and the pool refills; scale; delete garbage-collects.
import { PatchStrategy, setHeaderOptions, type V1Pod, type V1ReplicaSet } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, cluster, failure, isReady, runtimeImage, waitFor } from "./helpers.ts";

let c: Cluster;
beforeAll(async () => {
  c = await cluster();
});
afterAll(async () => {
  await c?.sim.close();
});

const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

const rs = (name: string, replicas: number): V1ReplicaSet => ({
  metadata: { name },
  spec: {
    replicas,
    selector: { matchLabels: { pool: name } },
    template: {
      metadata: { labels: { pool: name } },
      spec: {
        terminationGracePeriodSeconds: 5,
        containers: [{ name: "main", image: runtimeImage(), args: ["sleep", "infinity"] }],
      },
    },
  },
});

const owned = (rsUid: string) => async () =>
  (await c.core.listNamespacedPod({ namespace: "default" })).items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.metadata?.ownerReferences?.some((o) => o.uid === rsUid && o.controller),
  );

describe("replicasets", () => {
  it("keeps N Ready pods and refills after one is claimed (relabelled out of the selector)", async () => {
    const made = await c.apps.createNamespacedReplicaSet({ namespace: "default", body: rs("warm", 2) });
    const uid = made.metadata!.uid!;
    const two = await waitFor("2 ready pods", async () => {
      const pods = await owned(uid)();
      return pods.length === 2 && pods.every(isReady) ? pods : undefined;
    });
    expect(two.every((p) => p.metadata?.name?.startsWith("warm-"))).toBe(true);
    await waitFor(
      "status",
      async () =>
        (await c.apps.readNamespacedReplicaSet({ name: "warm", namespace: "default" })).status?.readyReplicas === 2,
    );

    const victim = two[0]!;
    const claimed = await c.core.patchNamespacedPod(
      {
        name: victim.metadata!.name!,
        namespace: "default",
        body: {
          metadata: { resourceVersion: victim.metadata!.resourceVersion, labels: { pool: null, sandbox: "s1" } },
        },
      },
      merge,
    );
    expect(claimed.metadata?.labels).toEqual({ sandbox: "s1" });
    const released = await waitFor("released", async () => {
      const p = await c.core.readNamespacedPod({ name: victim.metadata!.name!, namespace: "default" });
      return p.metadata?.ownerReferences === undefined ? p : undefined;
    });
    expect(released.status?.phase).toBe("Running");
    const refilled = await waitFor("refilled", async () => {
      const pods = await owned(uid)();
      return pods.length === 2 && pods.every(isReady) ? pods : undefined;
    });
    expect(refilled.map((p) => p.metadata?.name)).not.toContain(victim.metadata?.name);

    // Scale down through the scale subresource, then up with a merge patch of spec.replicas.
    await c.apps.patchNamespacedReplicaSetScale(
      { name: "warm", namespace: "default", body: { spec: { replicas: 1 } } },
      merge,
    );
    await waitFor("scaled to 1", async () => (await owned(uid)()).length === 1);
    const scale = await c.apps.readNamespacedReplicaSetScale({ name: "warm", namespace: "default" });
    expect(scale.spec?.replicas).toBe(1);
    await c.apps.patchNamespacedReplicaSet(
      { name: "warm", namespace: "default", body: { spec: { replicas: 3 } } },
      merge,
    );
    await waitFor("scaled to 3", async () => (await owned(uid)()).length === 3);

    // Deleting the ReplicaSet deletes its pods; the claimed pod is no longer its own and stays.
    await c.apps.deleteNamespacedReplicaSet({ name: "warm", namespace: "default" });
    await waitFor("pods collected", async () => (await owned(uid)()).length === 0);
    const still: V1Pod = await c.core.readNamespacedPod({ name: victim.metadata!.name!, namespace: "default" });
    expect(still.metadata?.deletionTimestamp).toBeUndefined();
  });

  it("adopts a matching orphan pod and validates the template against the selector", async () => {
    await c.core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "orphan", labels: { pool: "adopt" } },
        spec: {
          containers: [{ name: "main", image: runtimeImage(), args: ["sleep", "infinity"] }],
          terminationGracePeriodSeconds: 5,
        },
      },
    });
    const made = await c.apps.createNamespacedReplicaSet({ namespace: "default", body: rs("adopt", 1) });
    const adopted = await waitFor("adopted", async () => {
      const p = await c.core.readNamespacedPod({ name: "orphan", namespace: "default" });
      return p.metadata?.ownerReferences?.[0]?.uid === made.metadata?.uid ? p : undefined;
    });
    expect(adopted.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: "ReplicaSet",
      name: "adopt",
      controller: true,
    });
    // Only the adopted pod: the controller creates none while the orphan fills the one replica.
    await new Promise((r) => setTimeout(r, 500));
    expect(await owned(made.metadata!.uid!)()).toHaveLength(1);

    const bad = rs("bad", 1);
    bad.spec!.template!.metadata!.labels = { other: "x" };
    const e = await failure(c.apps.createNamespacedReplicaSet({ namespace: "default", body: bad }));
    expect(e.code).toBe(422);
    expect(e.body.message).toContain("`selector` does not match template `labels`");
  });
});
