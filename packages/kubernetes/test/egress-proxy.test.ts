// Allow-list sandboxes on Kubernetes, end to end against kube-sim: the engine deploys Kiln's egress
// proxy (a ReplicaSet) in the namespace, the sandbox's NetworkPolicy lets it reach only that proxy,
// and the proxy enforces the per-sandbox rules. The "internet" is core's test host (allow-hosts.ts)
// in a container on the sim's own network; no traffic leaves this machine. The cases every engine
// meets are core's allow-list contract (packages/core/test/allow-contract.ts, also run on Docker
// by allow.test.ts), with the sim's network in place of Docker's holders; the cases here are the
// Kubernetes engine's own (its proxy ReplicaSet, NetworkPolicies, rules files). kube-sim enforces
// the policies with iptables in each pod's namespace.
import { EngineError, Kiln, type Sandbox } from "@kiln/core";
import { DockerEngine } from "@kiln/core/engine";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allowListContract, CONTRACT_ALLOW, curl, pinnedTestNames } from "../../core/test/allow-contract.ts";
import { startTestHosts, type TestHosts } from "../../core/test/allow-hosts.ts";
import { PROXY_ANNOTATION, PROXY_CONTAINER, PROXY_DATA, PROXY_LABEL } from "../src/egress-proxy.ts";
import { KubernetesEngine, MERGE_PATCH } from "../src/engine.ts";
import { runExec } from "../src/exec.ts";
import { K8S_LABEL } from "../src/manifests.ts";
import { runtimeImage } from "./image.ts";

const NAMESPACE = "kiln-egress-test";
const docker = new DockerEngine().docker;
let sim: KubeSim;
let hosts: TestHosts;
let engine: KubernetesEngine;
let kiln: Kiln;
let image: string;
let sb: Sandbox;

function options(extra: Partial<ConstructorParameters<typeof KubernetesEngine>[0]> = {}) {
  return {
    kubeconfig: sim.kubeconfig,
    namespace: NAMESPACE,
    networkPolicy: "enforced" as const,
    // Test-only proxy settings: only the test host's address is trusted (the sim's network also
    // holds every pod), its DNS server is the proxy's resolver, a few names are pinned.
    egressProxy: {
      trust: [`${hosts.address}/32`],
      resolver: hosts.address,
      hosts: pinnedTestNames(hosts),
    },
    ...extra,
  };
}

beforeAll(async () => {
  image = await runtimeImage();
  sim = await startKubeSim({ namespaces: [NAMESPACE] });
  hosts = await startTestHosts(docker, image, `kiln.test-k8s-egress-${process.pid}`, `kube-sim-${sim.id}`);
  engine = new KubernetesEngine(options());
  kiln = new Kiln({ engine, image });
  sb = await kiln.create({ network: { allow: CONTRACT_ALLOW } });
  await sb.files.write("/tmp/ca.pem", hosts.ca);
}, 300_000);

afterAll(async () => {
  await kiln?.close();
  engine?.dispose();
  await hosts?.close();
  await sim?.close();
}, 120_000);

async function proxyPodOf(s: Sandbox) {
  const pod = await engine.resolve(s.id);
  const name = pod?.metadata?.annotations?.[PROXY_ANNOTATION.proxy];
  if (!name) throw new Error(`${s.id} is not bound to a proxy`);
  return engine.core.readNamespacedPod({ name, namespace: NAMESPACE });
}

function proxyExec(pod: string, argv: string[]) {
  return runExec({ kubeConfig: engine.kubeConfig, namespace: NAMESPACE, pod, container: PROXY_CONTAINER }, argv);
}

describe("an allow-list sandbox on Kubernetes", () => {
  it("is bound to a proxy replica the engine deployed, and its pod may reach only that", async () => {
    const pod = await engine.resolve(sb.id);
    expect(pod?.metadata?.labels?.[K8S_LABEL.networkMode]).toBe("allow");
    expect(JSON.parse(pod?.metadata?.annotations?.[PROXY_ANNOTATION.rules] ?? "")).toEqual({ allow: CONTRACT_ALLOW });
    const proxy = await proxyPodOf(sb);
    expect(proxy.metadata?.labels?.[PROXY_LABEL.component]).toBe("egress-proxy");
    expect(proxy.spec?.containers[0]?.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      allowPrivilegeEscalation: false,
    });
    expect(proxy.spec?.automountServiceAccountToken).toBe(false);
    const env = pod?.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === "HTTPS_PROXY")?.value).toBe(`http://${proxy.status?.podIP}:3128`);
    // The proxy runs as nobody, with no capability left.
    const id = await proxyExec(proxy.metadata?.name as string, [
      "sh",
      "-c",
      "id -u; grep -E '^CapEff' /proc/1/status; ls /var/lib/kiln-proxy/policies",
    ]);
    expect(id.stdout.toString()).toMatch(/^65534\nCapEff:\s+0+\n/);
    expect(id.stdout.toString()).toContain(`${pod?.status?.podIP}.json`);
  });
});

allowListContract(() => ({
  hosts,
  sb,
  create: (o) => kiln.create(o),
  proxyAddress: async (s) => (await proxyPodOf(s)).status?.podIP as string,
  proxyRestarts: async (s) => (await proxyPodOf(s)).status?.containerStatuses?.[0]?.restartCount ?? 0,
  // The node (kube-sim's gateway) on the API server's port.
  moreUnreachable: async () => ({
    node: [
      "tcp",
      hosts.address.replace(/\.\d+$/, ".1"),
      Number(new URL(engine.kubeConfig.getCurrentCluster()?.server ?? "").port),
    ],
  }),
  modeIsFixed: /cannot switch to an allow-list/,
}));

// Kubernetes only from here: the proxy's replicas, rules files and NetworkPolicies (the Docker
// engine's proxy is one container with its own lifecycle cases in core's allow.test.ts).
describe("the rules' lifecycle at the proxy", () => {
  async function files(s: Sandbox) {
    const proxy = (await proxyPodOf(s)).metadata?.name as string;
    const ls = async () =>
      (await proxyExec(proxy, ["sh", "-c", `cd ${PROXY_DATA} && ls policies logs`])).stdout.toString();
    return { ls, ip: (await engine.resolve(s.id))?.status?.podIP as string };
  }

  it("deleting a sandbox removes its rules and its log", async () => {
    const s = await kiln.create({ network: { allow: ["allowed.test"] } });
    await s.exec("curl -s --max-time 5 http://allowed.test/ >/dev/null");
    const { ls, ip } = await files(s);
    expect(await ls()).toContain(`${ip}.json`);
    expect(await ls()).toContain(`${s.id}.jsonl`);
    await s.delete();
    expect(await ls()).not.toContain(`${ip}.json`);
    expect(await ls()).not.toContain(`${s.id}.jsonl`);
  });

  it("the sweeper removes the rules of a pod deleted behind Kiln's back (its IP may be reused)", async () => {
    const s = await kiln.create({ network: { allow: ["allowed.test"] } });
    const { ls, ip } = await files(s);
    const pod = (await engine.resolve(s.id))?.metadata?.name as string;
    await engine.core.deleteNamespacedPod({ name: pod, namespace: NAMESPACE, gracePeriodSeconds: 0 });
    expect(await ls()).toContain(`${ip}.json`);
    await engine.reclaimHelpers(() => true);
    expect(await ls()).not.toContain(`${ip}.json`);
    // The bound sandbox's rules stay.
    expect(await ls()).toContain(`${(await engine.resolve(sb.id))?.status?.podIP}.json`);
  });
});

describe("the proxy's own NetworkPolicy", () => {
  const connect = (addr: string, port: number | string) =>
    `python3 -c "import socket; s=socket.socket(); s.settimeout(3); s.connect(('${addr}', ${port})); print('reached')"`;

  it("lets only allow-list sandboxes in: another pod of the namespace does not reach it", async () => {
    const proxy = (await proxyPodOf(sb)).status?.podIP as string;
    const name = "not-kiln";
    await engine.core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name },
        spec: {
          restartPolicy: "Never",
          containers: [{ name: "c", image, command: ["sleep", "600"], securityContext: { runAsUser: 1000 } }],
        },
      },
    });
    try {
      for (let i = 0; i < 100; i++) {
        const p = await engine.core.readNamespacedPod({ name, namespace: NAMESPACE });
        if (p.status?.phase === "Running") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const target = { kubeConfig: engine.kubeConfig, namespace: NAMESPACE, pod: name, container: "c" };
      // Unconfined itself (no policy selects it), it reaches the test host, but not the proxy.
      const out = await runExec(target, ["sh", "-c", `${connect(hosts.address, 80)}; ${connect(proxy, 3128)} 2>&1`]);
      expect(out.stdout.toString()).toMatch(/^reached\n.*No route to host/s);
    } finally {
      await engine.core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 });
    }
  });

  it("keeps the proxy off private addresses it does not trust (the second layer after its own check)", async () => {
    const proxy = (await proxyPodOf(sb)).metadata?.name as string;
    const gateway = hosts.address.replace(/\.\d+$/, ".1");
    const out = await proxyExec(proxy, ["sh", "-c", `${connect(hosts.address, 80)}; ${connect(gateway, 22)} 2>&1`]);
    // Rejected by the policy (ICMP admin-prohibited), not refused by the host's port.
    expect(out.stdout.toString()).toMatch(/^reached\n.*No route to host/s);
  });
});

describe("the proxy fails closed", () => {
  it("a rules file the proxy lost denies everything until the sweeper writes it back", async () => {
    const proxy = (await proxyPodOf(sb)).metadata?.name as string;
    const ip = (await engine.resolve(sb.id))?.status?.podIP as string;
    await proxyExec(proxy, ["rm", "-f", `${PROXY_DATA}/policies/${ip}.json`]);
    const lost = await curl(sb, "http://allowed.test/", "-i");
    expect(lost.stdout).toContain("has no network policy at Kiln's proxy");
    await engine.reclaimHelpers(() => true);
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
  });

  it("refuses an allow-list sandbox when no proxy replica becomes Ready, saying why", async () => {
    const broken = new KubernetesEngine(
      options({ egressProxy: { image: "kiln-no-such-image:0", readyTimeoutMs: 3_000 } }),
    );
    const err = await broken
      .createContainer({
        name: "kiln-broken",
        image,
        labels: { "kiln.kind": "sandbox" },
        env: {},
        cpus: 1,
        memoryMb: 256,
        pids: 64,
        network: { allow: ["allowed.test"] },
        volumes: [],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(String((err as Error).message)).toMatch(/no Ready replica after 3000 ms .*ErrImagePull/);
    // Nothing was created for the sandbox.
    expect(await broken.listContainers({})).toHaveLength((await engine.listContainers({})).length);
  });

  it("the sweeper deletes a proxy ReplicaSet no sandbox is bound to, past its grace period", async () => {
    const inUse = (await proxyPodOf(sb)).metadata?.ownerReferences?.[0]?.name as string;
    const sets = async () =>
      (
        await engine.apps.listNamespacedReplicaSet({ namespace: NAMESPACE, labelSelector: PROXY_LABEL.component })
      ).items.map((rs) => rs.metadata?.name);
    // The one of the broken image (previous test) is unused; within its grace period it stays.
    expect((await sets()).length).toBe(2);
    expect(await engine.egressProxy.reclaim()).not.toContain(inUse);
    expect((await sets()).length).toBe(2);
    const removed = await engine.egressProxy.reclaim(Date.now() + 3 * 60_000);
    expect(removed.filter((r) => r.startsWith("kiln-egress-proxy-"))).toHaveLength(1);
    expect(removed).not.toContain(inUse);
    expect(await sets()).toEqual([inUse]);
  });

  it("refuses allow-lists, like every mode, unless the CNI is declared to enforce NetworkPolicy", async () => {
    const unknown = new Kiln({ engine: new KubernetesEngine(options({ networkPolicy: "unknown" })), image });
    await expect(unknown.create({ network: { allow: ["allowed.test"] } })).rejects.toThrow(/networkPolicy: "enforced"/);
    await unknown.close();
  });

  it("with more replicas, a sandbox's rules are only at its own: another replica refuses it", async () => {
    const own = await proxyPodOf(sb);
    const set = own.metadata?.ownerReferences?.[0]?.name as string;
    await engine.apps.patchNamespacedReplicaSetScale(
      { name: set, namespace: NAMESPACE, body: { spec: { replicas: 2 } } },
      MERGE_PATCH,
    );
    let other: string | undefined;
    for (let i = 0; i < 300 && !other; i++) {
      const pods = await engine.core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `${PROXY_LABEL.component},${PROXY_LABEL.hash}=${own.metadata?.labels?.[PROXY_LABEL.hash]}`,
      });
      other = pods.items.find(
        (p) =>
          p.metadata?.name !== own.metadata?.name &&
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      )?.status?.podIP;
      if (!other) await new Promise((r) => setTimeout(r, 100));
    }
    expect(other).toBeDefined();
    const r = await curl(sb, "http://allowed.test/", `-i -x http://${other}:3128`);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).toContain("has no network policy at Kiln's proxy");
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
  });

  it("a sandbox whose proxy replica is gone reaches nothing; a new sandbox gets the replacement", async () => {
    const old = await proxyPodOf(sb);
    await engine.core.deleteNamespacedPod({
      name: old.metadata?.name as string,
      namespace: NAMESPACE,
      gracePeriodSeconds: 0,
    });
    // The container goes in the background once the object is deleted.
    let dead = await curl(sb, "http://allowed.test/", "--max-time 5");
    for (let i = 0; i < 50 && dead.exitCode === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      dead = await curl(sb, "http://allowed.test/", "--max-time 5");
    }
    expect(dead.exitCode).not.toBe(0);
    expect(dead.stdout).toBe("");
    await expect(sb.networkLog()).rejects.toThrow(/is gone, so it reaches nothing/);
    // The ReplicaSet controller replaced the replica; a new sandbox is bound to it.
    await using fresh = await kiln.create({ network: { allow: ["allowed.test"] } });
    expect((await proxyPodOf(fresh)).metadata?.name).not.toBe(old.metadata?.name);
    await fresh.files.write("/tmp/ca.pem", hosts.ca);
    expect((await curl(fresh, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
  }, 120_000);
});
