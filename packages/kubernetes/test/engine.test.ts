// The Kubernetes engine end to end against kube-sim (tests/kube-sim: a Kubernetes API server
// whose pods are this machine's Docker containers), driven only through @kubernetes/client-node.
// What these tests show holds for the simulator; the real-cluster suite (real-cluster.test.ts)
// is what shows it for a cluster.
import { Readable } from "node:stream";
import { ConflictError, Kiln } from "@kiln/core";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesEngine } from "../src/engine.ts";
import { runExec } from "../src/exec.ts";
import { K8S_LABEL, POLICY_NAMES } from "../src/manifests.ts";
import { runtimeImage } from "./image.ts";

const NAMESPACE = "kiln-engine-test";
let sim: KubeSim;
let engine: KubernetesEngine;
let kiln: Kiln;
let image: string;

beforeAll(async () => {
  image = await runtimeImage();
  sim = await startKubeSim({ namespaces: [NAMESPACE] });
  engine = new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" });
  kiln = new Kiln({ engine, image });
});

afterAll(async () => {
  await kiln?.close();
  engine?.dispose();
  await sim?.close();
});

async function podOf(id: string) {
  const pod = await engine.resolve(id);
  if (!pod) throw new Error(`no pod for ${id}`);
  return pod;
}

describe("a sandbox is one Pod", () => {
  it("runs a real agent, with Kiln's hardening and limits on the pod the API server stored", async () => {
    await using sb = await kiln.create({ resources: { cpus: 0.5, memoryMb: 300, pids: 64 }, env: { GREETING: "hi" } });
    expect((await sb.runCode("6 * 7")).results[0]?.text).toBe("42");
    expect((await sb.exec("id -u; echo $GREETING")).stdout).toBe("1000\nhi\n");
    const pod = await podOf(sb.id);
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.enableServiceLinks).toBe(false);
    expect(pod.spec?.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.spec?.containers[0]?.securityContext?.capabilities?.drop).toEqual(["ALL"]);
    expect(pod.spec?.containers[0]?.resources?.limits).toMatchObject({ cpu: "500m", memory: "300Mi" });
    // The kernel agrees: no capability in any set of the sandbox's processes.
    expect((await sb.exec("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status")).stdout).toMatch(
      /CapPrm:\s+0+\nCapEff:\s+0+\nCapBnd:\s+0+/,
    );
    expect((await sb.exec("grep NoNewPrivs /proc/self/status")).stdout).toMatch(/NoNewPrivs:\s+1/);
  });

  it("keeps all of Kiln's state on the pod: a second engine (another process) sees the same sandbox", async () => {
    await using sb = await kiln.create({ name: "shared-state", labels: { team: "a b" } });
    const other = new Kiln({
      engine: new KubernetesEngine({ kubeconfig: sim.kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" }),
      image,
    });
    try {
      const found = await other.get("shared-state");
      expect(found.id).toBe(sb.id);
      expect((await found.info()).labels).toEqual({ team: "a b" });
      expect((await other.list({ labels: { team: "a b" } })).map((s) => s.id)).toEqual([sb.id]);
    } finally {
      await other.close();
    }
  });

  it("gives a name to one of two concurrent creators only", async () => {
    const results = await Promise.allSettled([kiln.create({ name: "race" }), kiln.create({ name: "race" })]);
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won.length).toBeLessThanOrEqual(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ConflictError);
    for (const r of won) await (r as PromiseFulfilledResult<Awaited<ReturnType<Kiln["create"]>>>).value.delete();
  });

  it("files travel over exec (tar) both ways", async () => {
    await using sb = await kiln.create();
    const { pack } = await import("tar-stream");
    const archive = pack();
    archive.entry({ name: "dir/hello.txt" }, "over the exec channel");
    archive.finalize();
    await engine.putArchive(sb.id, "/workspace", Readable.from(archive));
    expect((await sb.exec("cat /workspace/dir/hello.txt")).stdout).toBe("over the exec channel");
    const back = await engine.getArchive(sb.id, "/workspace/dir");
    expect(back).toBeDefined();
    expect(await engine.getArchive(sb.id, "/workspace/missing")).toBeUndefined();
  });

  it("stop ends the pod (activeDeadlineSeconds) and keeps it as the sandbox's record (restart: persistence.test.ts)", async () => {
    await using sb = await kiln.create();
    await sb.stop();
    expect((await sb.info()).state).toBe("stopped");
    const pod = await podOf(sb.id);
    expect(pod.spec?.activeDeadlineSeconds).toBe(1);
    expect(pod.metadata?.annotations?.["kiln.workspace-claim"]).toBe(`kiln-ws-${sb.id}`);
  });

  it("idle auto-stop: a sandbox whose last activity is older than autoStopMs is stopped by any Kiln's sweep", async () => {
    await using sb = await kiln.create({ autoStopMs: 1_000 });
    expect((await sb.exec("true")).exitCode).toBe(0);
    expect(await engine.stopIdle(Date.now())).toEqual([]);
    const stopped = await engine.stopIdle(Date.now() + 60_000);
    expect(stopped).toContain(sb.id);
    expect((await sb.info()).state).toBe("stopped");
  });

  it("the exec channel speaks v4 when the server offers no v5", async () => {
    const v4 = new KubernetesEngine({
      kubeconfig: sim.kubeconfig,
      namespace: NAMESPACE,
      networkPolicy: "enforced",
      execProtocols: ["v4.channel.k8s.io"],
    });
    const viaV4 = new Kiln({ engine: v4, image });
    try {
      await using sb = await viaV4.create();
      expect((await sb.runCode("'v4 ok'")).results[0]?.text).toBe("'v4 ok'");
      const pod = (await podOf(sb.id)).metadata?.name as string;
      const result = await runExec(v4.target(pod), ["sh", "-c", 'head -c 5; echo " $0"', "v4"], Buffer.from("hello"));
      expect(result).toMatchObject({ exitCode: 0, stdout: Buffer.from("hello v4\n") });
    } finally {
      await viaV4.close();
    }
  });
});

describe("network modes as NetworkPolicies", () => {
  it("creates the shared policies and labels each pod with its mode (allow-lists: egress-proxy.test.ts)", async () => {
    await using none = await kiln.create();
    await using egress = await kiln.create({ network: "egress" });
    const names = (await engine.networking.listNamespacedNetworkPolicy({ namespace: NAMESPACE })).items.map(
      (p) => p.metadata?.name,
    );
    expect(names).toEqual(expect.arrayContaining([POLICY_NAMES.deny, POLICY_NAMES.egress, POLICY_NAMES.allow]));
    expect((await podOf(none.id)).metadata?.labels?.[K8S_LABEL.networkMode]).toBe("none");
    expect((await podOf(egress.id)).metadata?.labels?.[K8S_LABEL.networkMode]).toBe("egress");
    // kube-sim enforces egress deny-all (the "none" pod keeps only loopback); rules that allow
    // something it stores without enforcing (docs/kubernetes.md): the egress pod keeps its interface.
    const interfaces = async (sb: typeof none) =>
      (await sb.exec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort")).stdout.trim().split("\n");
    expect(await interfaces(none)).toEqual(["lo"]);
    expect((await interfaces(egress)).length).toBeGreaterThan(1);
  });
});

describe("the warm pool is a ReplicaSet", () => {
  it("claims relabel a Ready member under a resourceVersion precondition; the ReplicaSet refills", async () => {
    const pooled = new Kiln({ engine, image, pool: { size: 2 }, defaults: { resources: { memoryMb: 256 } } });
    try {
      await pooled.pool?.filled();
      expect(pooled.pool?.ready).toBe(2);
      // Two claims at once never get the same member.
      const [a, b] = await Promise.all([pooled.create(), pooled.create()]);
      expect(a.id).not.toBe(b.id);
      const pod = await podOf(a.id);
      expect(pod.metadata?.labels?.[K8S_LABEL.kind]).toBe("sandbox");
      expect(pod.metadata?.labels?.["kiln.pooled"]).toBeDefined();
      expect(pod.metadata?.ownerReferences ?? []).toEqual([]);
      // A stale resourceVersion is refused: the API server's 409 is what makes claims exclusive.
      await expect(
        engine.core.patchNamespacedPod(
          {
            name: pod.metadata?.name as string,
            namespace: NAMESPACE,
            body: { metadata: { resourceVersion: "1", labels: { stolen: "yes" } } },
          },
          (await import("../src/engine.ts")).MERGE_PATCH,
        ),
      ).rejects.toMatchObject({ code: 409 });
      await pooled.pool?.filled();
      expect(pooled.pool?.ready).toBe(2);
      await a.delete();
      await b.delete();
    } finally {
      await pooled.close();
    }
    const left = await engine.listPods(`${K8S_LABEL.kind}=pool`);
    expect(left).toEqual([]);
  });
});
