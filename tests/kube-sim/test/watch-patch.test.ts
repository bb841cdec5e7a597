// Watch (client-node's Watch and informer), patches of the three kinds, optimistic concurrency on
// resourceVersion (the warm-pool claim: exactly one of two concurrent claims wins), and PUT.
import { makeInformer, PatchStrategy, setHeaderOptions, type V1Pod, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, cluster, failure, sleeperPod, waitFor, waitReady } from "./helpers.ts";

let c: Cluster;
beforeAll(async () => {
  c = await cluster();
});
afterAll(async () => {
  await c?.sim.close();
});

const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const strategic = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);
const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);

describe("watch", () => {
  it("sees ADDED, MODIFIED and DELETED for a pod's life, filtered by a label selector", async () => {
    const events: { type: string; name: string; phase?: string; deleting: boolean }[] = [];
    let ended: unknown = "open";
    const ctrl = await new Watch(c.kc).watch(
      "/api/v1/namespaces/default/pods",
      { labelSelector: "watch=yes" },
      (type, obj: V1Pod) =>
        events.push({
          type,
          name: obj.metadata!.name!,
          phase: obj.status?.phase,
          deleting: !!obj.metadata?.deletionTimestamp,
        }),
      (err) => {
        ended = err;
      },
    );
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("other") });
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("w-1", { labels: { watch: "yes" } }) });
    await waitReady(c, "w-1");
    await c.core.deleteNamespacedPod({ name: "w-1", namespace: "default" });
    await waitFor("DELETED", async () => events.some((e) => e.type === "DELETED"));
    ctrl.abort();
    expect(events.every((e) => e.name === "w-1")).toBe(true);
    expect(events[0]).toMatchObject({ type: "ADDED", phase: "Pending" });
    expect(events.some((e) => e.type === "MODIFIED" && e.phase === "Running")).toBe(true);
    expect(events.some((e) => e.type === "MODIFIED" && e.deleting)).toBe(true);
    expect(events.at(-1)?.type).toBe("DELETED");
    expect(ended).toBe("open");
  });

  it("resumes from a list's resourceVersion, and a relabelled pod leaves the selector as DELETED", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("r-1", { labels: { pool: "p" } }) });
    const list = await c.core.listNamespacedPod({ namespace: "default", labelSelector: "pool=p" });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(["r-1"]);
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("r-2", { labels: { pool: "p" } }) });
    const events: string[] = [];
    const ctrl = await new Watch(c.kc).watch(
      "/api/v1/namespaces/default/pods",
      { labelSelector: "pool=p", resourceVersion: list.metadata!.resourceVersion },
      (type, obj: V1Pod) => events.push(`${type} ${obj.metadata!.name}`),
      () => {},
    );
    // r-2 was created after the list: the watch replays it; r-1 is not repeated.
    await waitFor("r-2 replayed", async () => events.includes("ADDED r-2"));
    expect(events).not.toContain("ADDED r-1");
    await c.core.patchNamespacedPod(
      { name: "r-1", namespace: "default", body: { metadata: { labels: { pool: null } } } },
      merge,
    );
    await waitFor("r-1 leaves", async () => events.includes("DELETED r-1"));
    ctrl.abort();
  });

  it("feeds client-node's informer (list, then watch from the list's resourceVersion)", async () => {
    const informer = makeInformer(
      c.kc,
      "/api/v1/namespaces/default/pods",
      () => c.core.listNamespacedPod({ namespace: "default", labelSelector: "inf=1" }),
      "inf=1",
    );
    const seen: string[] = [];
    informer.on("add", (p: V1Pod) => seen.push(`add ${p.metadata!.name}`));
    informer.on("delete", (p: V1Pod) => seen.push(`delete ${p.metadata!.name}`));
    await informer.start();
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("inf-1", { labels: { inf: "1" } }) });
    await waitFor("informer add", async () => seen.includes("add inf-1"));
    await c.core.deleteNamespacedPod({ name: "inf-1", namespace: "default", gracePeriodSeconds: 0 });
    await waitFor("informer delete", async () => seen.includes("delete inf-1"));
    expect(informer.list().map((p) => p.metadata?.name)).toEqual([]);
    await informer.stop();
  });
});

describe("watch history", () => {
  it("a resourceVersion older than the retained history is one ERROR event with a 410 Expired Status", async () => {
    const small = await cluster({ watchHistory: 5 });
    try {
      const list = await small.core.listNamespacedPod({ namespace: "default" });
      for (let i = 0; i < 4; i++) await small.core.createNamespace({ body: { metadata: { name: `ns-${i}` } } });
      for (let i = 0; i < 4; i++) await small.core.deleteNamespace({ name: `ns-${i}` });
      const events: { type: string; object: { code?: number; reason?: string } }[] = [];
      let done: unknown = "open";
      await new Watch(small.kc).watch(
        "/api/v1/namespaces/default/pods",
        { resourceVersion: list.metadata!.resourceVersion },
        (type, object) => events.push({ type, object }),
        (err) => {
          done = err;
        },
      );
      await waitFor("watch ended", async () => done !== "open");
      expect(events).toEqual([
        { type: "ERROR", object: expect.objectContaining({ kind: "Status", code: 410, reason: "Expired" }) },
      ]);
    } finally {
      await small.sim.close();
    }
  });
});

describe("patch and update", () => {
  it("merge, strategic-merge and JSON patches change labels and annotations and bump resourceVersion", async () => {
    const pod = await c.core.createNamespacedPod({
      namespace: "default",
      body: sleeperPod("p-1", { labels: { a: "1", b: "2" } }),
    });
    const m = await c.core.patchNamespacedPod(
      { name: "p-1", namespace: "default", body: { metadata: { labels: { a: null, c: "3" } } } },
      merge,
    );
    expect(m.metadata?.labels).toEqual({ b: "2", c: "3" });
    expect(Number(m.metadata?.resourceVersion)).toBeGreaterThan(Number(pod.metadata?.resourceVersion));
    const s = await c.core.patchNamespacedPod(
      { name: "p-1", namespace: "default", body: { metadata: { annotations: { "kiln.dev/x": "y" } } } },
      strategic,
    );
    expect(s.metadata?.annotations).toEqual({ "kiln.dev/x": "y" });
    expect(s.metadata?.labels).toEqual({ b: "2", c: "3" });
    const j = await c.core.patchNamespacedPod(
      {
        name: "p-1",
        namespace: "default",
        body: [
          { op: "test", path: "/metadata/resourceVersion", value: s.metadata!.resourceVersion },
          { op: "replace", path: "/metadata/labels/b", value: "two" },
        ],
      },
      jsonPatch,
    );
    expect(j.metadata?.labels?.b).toBe("two");
    // The same test against the old resourceVersion fails the whole patch.
    const stale = await failure(
      c.core.patchNamespacedPod(
        {
          name: "p-1",
          namespace: "default",
          body: [
            { op: "test", path: "/metadata/resourceVersion", value: s.metadata!.resourceVersion },
            { op: "replace", path: "/metadata/labels/b", value: "three" },
          ],
        },
        jsonPatch,
      ),
    );
    expect(stale.code).toBe(422);
    expect((await c.core.readNamespacedPod({ name: "p-1", namespace: "default" })).metadata?.labels?.b).toBe("two");
    // A pod's spec is immutable beyond the image and activeDeadlineSeconds.
    const spec = await failure(
      c.core.patchNamespacedPod(
        { name: "p-1", namespace: "default", body: { spec: { restartPolicy: "Always" } } },
        merge,
      ),
    );
    expect(spec.code).toBe(422);
    expect(spec.body.message).toContain("pod updates may not change fields");
  });

  it("a merge patch with a stale metadata.resourceVersion is 409 Conflict; of two concurrent claims exactly one wins", async () => {
    await c.core.createNamespacedPod({
      namespace: "default",
      body: sleeperPod("claim-1", { labels: { pool: "warm" } }),
    });
    // Ready: the kubelet is done writing its status, as for a warm pod waiting to be claimed.
    const pod = await waitReady(c, "claim-1");
    const rv = pod.metadata!.resourceVersion!;
    const claim = (who: string) =>
      c.core.patchNamespacedPod(
        {
          name: "claim-1",
          namespace: "default",
          body: { metadata: { resourceVersion: rv, labels: { pool: null, claimedBy: who } } },
        },
        merge,
      );
    const results = await Promise.allSettled([claim("a"), claim("b")]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const conflict = await failure(Promise.reject((lost[0] as PromiseRejectedResult).reason));
    expect(conflict.code).toBe(409);
    expect(conflict.body).toMatchObject({ kind: "Status", reason: "Conflict", code: 409 });
    const winner = (won[0] as PromiseFulfilledResult<V1Pod>).value.metadata?.labels?.claimedBy;
    expect((await c.core.readNamespacedPod({ name: "claim-1", namespace: "default" })).metadata?.labels).toEqual({
      claimedBy: winner,
    });
  });

  it("PUT replaces with a resourceVersion precondition", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("put-1") });
    const pod = await waitReady(c, "put-1");
    pod.metadata!.labels = { put: "1" };
    const replaced = await c.core.replaceNamespacedPod({ name: "put-1", namespace: "default", body: pod });
    expect(replaced.metadata?.labels).toEqual({ put: "1" });
    pod.metadata!.labels = { put: "2" };
    const stale = await failure(c.core.replaceNamespacedPod({ name: "put-1", namespace: "default", body: pod }));
    expect(stale.code).toBe(409);
  });
});
