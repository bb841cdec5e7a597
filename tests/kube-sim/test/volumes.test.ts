// PersistentVolumeClaims through the real client-node: provisioning binds at once, pods mount them
// (Docker volumes) with the pod's fsGroup, files outlive pods, deletion waits for the last pod
// (pvc-protection), and a pod naming a missing or terminating claim is not scheduled.
import { PatchStrategy, setHeaderOptions, type V1PersistentVolumeClaim, type V1Pod } from "@kubernetes/client-node";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIM_LABEL } from "../src/index.ts";
import { type Cluster, cluster, exec, failure, sleeperPod, waitFor, waitReady } from "./helpers.ts";

const docker = new Docker();
let c: Cluster;

beforeAll(async () => {
  c = await cluster();
});
afterAll(async () => {
  await c?.sim.close();
});

const claim = (name: string, extra: Partial<V1PersistentVolumeClaim["spec"]> = {}): V1PersistentVolumeClaim => ({
  metadata: { name },
  spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } }, ...extra },
});

function mounting(name: string, claimName: string, mountPath: string, readOnly = false): V1Pod {
  return sleeperPod(name, {
    spec: {
      securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
      volumes: [{ name: "data", persistentVolumeClaim: { claimName } }],
      containers: [
        {
          name: "main",
          image: sleeperPod("x").spec!.containers[0]!.image,
          args: ["sleep", "infinity"],
          volumeMounts: [{ name: "data", mountPath, readOnly }],
        },
      ],
      terminationGracePeriodSeconds: 1,
    },
  });
}

async function simVolumes(): Promise<string[]> {
  const list = await docker.listVolumes({ filters: { label: [`${SIM_LABEL}=${c.sim.id}`] } });
  return (list.Volumes ?? []).map((v) => v.Name);
}

describe("persistentvolumeclaims", () => {
  it("binds a new claim at once, with the protection finalizer; invalid claims are 422 naming the field", async () => {
    const made = await c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("bind-1") });
    expect(made.metadata?.finalizers).toContain("kubernetes.io/pvc-protection");
    expect(made.spec?.volumeMode).toBe("Filesystem");
    const bound = await waitFor("bound", async () => {
      const p = await c.core.readNamespacedPersistentVolumeClaim({ name: "bind-1", namespace: "default" });
      return p.status?.phase === "Bound" ? p : undefined;
    });
    expect(bound.status?.capacity?.storage).toBe("1Gi");
    expect(bound.status?.accessModes).toEqual(["ReadWriteOnce"]);
    expect(await simVolumes()).toContain(`kube-sim-${c.sim.id}-pvc-${made.metadata?.uid}`);

    const noModes = await failure(
      c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("bad-1", { accessModes: [] }) }),
    );
    expect(noModes.code).toBe(422);
    expect(JSON.stringify(noModes.body.details?.causes)).toMatch(/spec.accessModes/);
    const badName = await failure(
      c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("Bad_Name") }),
    );
    expect(badName.code).toBe(422);
    const noSize = await failure(
      c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("bad-2", { resources: {} }) }),
    );
    expect(JSON.stringify(noSize.body.details?.causes)).toMatch(/spec.resources\[storage\]/);
    const mode = await failure(
      c.core.createNamespacedPersistentVolumeClaim({
        namespace: "default",
        body: claim("bad-3", { accessModes: ["Everyone"] }),
      }),
    );
    expect(mode.code).toBe(422);
    // The spec is immutable (a larger request aside).
    const changed = await failure(
      c.core.patchNamespacedPersistentVolumeClaim(
        { name: "bind-1", namespace: "default", body: { spec: { accessModes: ["ReadWriteMany"] } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    );
    expect(changed.code).toBe(422);
  });

  it("mounts a claim with the pod's fsGroup; files outlive the pod; a read-only mount refuses writes", async () => {
    await c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("files-1") });
    await c.core.createNamespacedPod({ namespace: "default", body: mounting("writer-1", "files-1", "/data") });
    await waitReady(c, "writer-1");
    const wrote = await exec(c, "writer-1", [
      "/bin/sh",
      "-c",
      "echo kept > /data/f && ls -ln /data/f && stat -c %g /data",
    ]);
    expect(wrote.status.status).toBe("Success");
    // Written by uid 1000; the volume's root has the fsGroup.
    expect(wrote.stdout).toMatch(/ 1000 +1000 /);
    expect(wrote.stdout.trim().endsWith("1000")).toBe(true);
    await c.core.deleteNamespacedPod({ name: "writer-1", namespace: "default", gracePeriodSeconds: 0 });

    await c.core.createNamespacedPod({ namespace: "default", body: mounting("reader-1", "files-1", "/in", true) });
    await waitReady(c, "reader-1");
    expect((await exec(c, "reader-1", ["cat", "/in/f"])).stdout).toBe("kept\n");
    const refused = await exec(c, "reader-1", ["/bin/sh", "-c", "echo x > /in/g"]);
    expect(refused.status.status).toBe("Failure");
    expect(refused.stderr).toMatch(/Read-only file system/);
    // Kubernetes does not copy the image's files into a claim (Docker's copy-up is off).
    await c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("empty-1") });
    await c.core.createNamespacedPod({ namespace: "default", body: mounting("etc-1", "empty-1", "/etc/ssl") });
    await waitReady(c, "etc-1");
    expect((await exec(c, "etc-1", ["ls", "-A", "/etc/ssl"])).stdout).toBe("");
    await c.core.deleteNamespacedPod({ name: "etc-1", namespace: "default", gracePeriodSeconds: 0 });
    await c.core.deleteNamespacedPod({ name: "reader-1", namespace: "default", gracePeriodSeconds: 0 });
  });

  it("a claim in use only starts terminating; it goes (with its volume) when the last pod does", async () => {
    const made = await c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("held-1") });
    await c.core.createNamespacedPod({ namespace: "default", body: mounting("holder-1", "held-1", "/data") });
    await waitReady(c, "holder-1");
    await c.core.deleteNamespacedPersistentVolumeClaim({ name: "held-1", namespace: "default" });
    const terminating = await c.core.readNamespacedPersistentVolumeClaim({ name: "held-1", namespace: "default" });
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    // A new pod naming a terminating claim is not scheduled.
    await c.core.createNamespacedPod({ namespace: "default", body: mounting("late-1", "held-1", "/data") });
    const late = await waitFor("unschedulable", async () => {
      const p = await c.core.readNamespacedPod({ name: "late-1", namespace: "default" });
      const cond = p.status?.conditions?.find((x) => x.type === "PodScheduled");
      return cond?.status === "False" ? cond : undefined;
    });
    expect(late.reason).toBe("Unschedulable");
    expect(late.message).toMatch(/persistentvolumeclaim "held-1" is being deleted/);
    await c.core.deleteNamespacedPod({ name: "late-1", namespace: "default", gracePeriodSeconds: 0 });
    // The running holder still keeps it.
    expect(
      (await c.core.readNamespacedPersistentVolumeClaim({ name: "held-1", namespace: "default" })).metadata?.name,
    ).toBe("held-1");
    await c.core.deleteNamespacedPod({ name: "holder-1", namespace: "default", gracePeriodSeconds: 0 });
    await waitFor("claim gone", async () => {
      const gone = await failure(c.core.readNamespacedPersistentVolumeClaim({ name: "held-1", namespace: "default" }));
      return gone.code === 404;
    });
    const volume = `kube-sim-${c.sim.id}-pvc-${made.metadata?.uid}`;
    await waitFor("volume removed", async () => !(await simVolumes()).includes(volume));
  });

  it("a pod naming a missing claim stays Pending until the claim exists, then runs", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: mounting("waits-1", "later-1", "/data") });
    const cond = await waitFor("unschedulable", async () => {
      const p = await c.core.readNamespacedPod({ name: "waits-1", namespace: "default" });
      return p.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False");
    });
    expect(cond.message).toMatch(/persistentvolumeclaim "later-1" not found/);
    expect((await c.core.readNamespacedPod({ name: "waits-1", namespace: "default" })).status?.phase).toBe("Pending");
    await c.core.createNamespacedPersistentVolumeClaim({ namespace: "default", body: claim("later-1") });
    await waitReady(c, "waits-1");
    await c.core.deleteNamespacedPod({ name: "waits-1", namespace: "default", gracePeriodSeconds: 0 });
  });
});
