// The real-cluster suite: runs only when KILN_KUBECONFIG names a kubeconfig, and reports
// itself SKIPPED otherwise (never passed). Until it has passed on a real cluster the engine is
// experimental (README). It needs:
//   KILN_KUBECONFIG            a kubeconfig whose user may manage pods, pods/exec, replicasets,
//                              networkpolicies and persistentvolumeclaims in the namespace (and a
//                              default StorageClass, for the stop/start and volume checks)
//   KILN_K8S_NAMESPACE         an existing namespace (default "kiln-test")
//   KILN_K8S_IMAGE             the runtime image as the cluster pulls it (e.g. pushed to a registry:
//                              docs/kubernetes.md "Images")
//   KILN_K8S_NETWORK_POLICY    "enforced" when the CNI enforces NetworkPolicy (the network checks need it;
//                              the allow-list check also needs the runtime image pullable for the egress proxy)
//   KILN_K8S_GVISOR            a RuntimeClass name for the gVisor tier (optional)
import { Kiln } from "@kiln/core";
import { afterAll, describe, expect, it } from "vitest";
import { kubernetes } from "../src/index.ts";

const kubeconfig = process.env.KILN_KUBECONFIG;
const namespace = process.env.KILN_K8S_NAMESPACE ?? "kiln-test";
const image = process.env.KILN_K8S_IMAGE;
const gvisor = process.env.KILN_K8S_GVISOR;

describe.skipIf(!kubeconfig)("a real cluster (KILN_KUBECONFIG)", () => {
  const engine = kubernetes({
    ...(kubeconfig === undefined ? {} : { kubeconfig }),
    namespace,
    networkPolicy: process.env.KILN_K8S_NETWORK_POLICY === "enforced" ? "enforced" : "unknown",
    ...(gvisor ? { runtimeClasses: { gvisor } } : {}),
    // The cluster pulls the image; nothing is built here.
    imagePullPolicy: "IfNotPresent",
  });
  const kiln = new Kiln({ engine, ...(image ? { image } : {}) });
  afterAll(async () => {
    await kiln.close();
    engine.dispose();
  });

  it("answers, and has the namespace", async () => {
    await engine.ping();
    await engine.core.readNamespace({ name: namespace });
  });

  it("runs a sandbox: code, commands, files, and deletes it", async () => {
    await using sb = await kiln.create({ labels: { suite: "real-cluster" } });
    expect((await sb.runCode("6 * 7")).results[0]?.text).toBe("42");
    expect((await sb.exec("id -u")).stdout.trim()).toBe("1000");
    await sb.files.write("/workspace/x.txt", "cluster");
    expect(await sb.files.readText("/workspace/x.txt")).toBe("cluster");
  });

  it("network none reaches nothing; egress reaches no private range or metadata address", async () => {
    await using none = await kiln.create({ network: "none" });
    const noneOut = await none.exec("curl -sS -m 5 -o /dev/null -w '%{http_code}' https://example.com || echo blocked");
    expect(noneOut.stdout).toMatch(/blocked/);
    await using egress = await kiln.create({ network: "egress" });
    const meta = await egress.exec("curl -sS -m 5 http://169.254.169.254/ || echo blocked");
    expect(meta.stdout).toMatch(/blocked/);
  });

  it("an allow-list sandbox goes only through Kiln's egress proxy, which refuses what is not listed", async () => {
    // Nothing here needs to reach the internet: the proxy refuses before it would dial.
    await using sb = await kiln.create({ network: { allow: ["kiln-allowed.invalid"] } });
    const denied = await sb.exec("curl -sS -m 10 -i http://example.com/ || echo failed");
    expect(denied.stdout).toContain("example.com is not on this sandbox's network allow-list");
    const meta = await sb.exec("curl -sS -m 10 -i http://169.254.169.254/ || echo failed");
    expect(meta.stdout).toMatch(/403/);
    // Without the proxy: metadata, a public address, DNS. The CNI must drop all of them.
    const direct = await sb.exec(
      "for a in 169.254.169.254 1.1.1.1; do curl -sS -m 5 --noproxy '*' http://$a/ >/dev/null 2>&1 && echo reached $a; done; getent hosts example.com && echo resolved; true",
    );
    expect(direct.stdout).toBe("");
    expect((await sb.networkLog()).map((d) => d.allowed)).toEqual([false, false]);
  });

  it("claims from a ReplicaSet pool", async () => {
    const pooled = new Kiln({ engine, ...(image ? { image } : {}), pool: { size: 1 } });
    try {
      await pooled.pool?.filled();
      const started = Date.now();
      await using sb = await pooled.create();
      const claimMs = Date.now() - started;
      expect((await sb.exec("echo pooled")).stdout).toBe("pooled\n");
      console.log(`claim latency on this cluster: ${claimMs} ms`);
    } finally {
      await pooled.close();
    }
  });

  it("stops and starts a sandbox: a new pod with its /workspace", async () => {
    await using sb = await kiln.create();
    await sb.files.write("kept.txt", "kept");
    await sb.stop();
    expect((await sb.info()).state).toBe("stopped");
    await sb.start();
    expect(await sb.files.readText("kept.txt")).toBe("kept");
  });

  it("mounts a volume (a PersistentVolumeClaim) and refuses to delete it while mounted", async () => {
    const name = `real-${Date.now().toString(36)}`;
    await kiln.volumes.create(name);
    try {
      const sb = await kiln.create({ volumes: [{ volume: name, mountPath: "/data" }] });
      try {
        expect((await sb.exec("echo v > /data/f && cat /data/f")).stdout).toBe("v\n");
        await expect(kiln.volumes.delete(name)).rejects.toThrow(/in use/);
      } finally {
        await sb.delete();
      }
    } finally {
      await kiln.volumes.delete(name).catch(() => {});
    }
  });

  it.skipIf(!gvisor)("runs the gVisor tier on its RuntimeClass", async () => {
    await using sb = await kiln.create({ runtime: "gvisor" });
    expect((await sb.exec("dmesg 2>/dev/null | head -1 || true")).exitCode).toBe(0);
  });
});
