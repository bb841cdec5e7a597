// Allow-list sandboxes on Kubernetes, end to end against kube-sim: the engine deploys Kiln's egress
// proxy (a ReplicaSet) in the namespace, the sandbox's NetworkPolicy lets it reach only that proxy,
// and the proxy enforces the per-sandbox rules. The "internet" is core's test host (allow-hosts.ts)
// in a container on the sim's own network; no traffic leaves this machine. The hostile cases are
// core's allow-list tests' (packages/core/test/allow.test.ts), with the sim's network in place of
// Docker's holders. kube-sim enforces the policies with iptables in each pod's namespace.
import { BlockList } from "node:net";
import { EngineError, Kiln, NotSupportedError, type Sandbox } from "@kiln/core";
import { DockerEngine } from "@kiln/core/engine";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HOSTILE_PROXY_REQUESTS,
  SNI_MISMATCH_PROBE,
  startTestHosts,
  type TestHosts,
} from "../../core/test/allow-hosts.ts";
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

/** A private address outside the sim's subnet (the proxy must refuse it, trusted or not). */
function privateOutside(subnet: string): string {
  const [base, bits] = subnet.split("/");
  const list = new BlockList();
  if (base && bits) list.addSubnet(base, Number(bits));
  const address = ["192.168.77.7", "10.255.77.7", "172.31.255.7"].find((a) => !list.check(a));
  if (!address) throw new Error(`no private test address outside ${subnet}`);
  return address;
}

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
      hosts: {
        "internal.test": privateOutside(hosts.subnet),
        "loop.test": "127.0.0.1",
        "meta.test": "169.254.169.254",
      },
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
  sb = await kiln.create({ network: { allow: ["allowed.test", "*.wild.test", "tls.test"] } });
  await sb.files.write("/tmp/ca.pem", hosts.ca);
}, 300_000);

afterAll(async () => {
  await kiln?.close();
  engine?.dispose();
  await hosts?.close();
  await sim?.close();
}, 120_000);

async function curl(s: Sandbox, url: string, extra = "") {
  return s.exec(`curl -sS --max-time 10 --cacert /tmp/ca.pem ${extra} '${url}'`, { timeoutMs: 30_000 });
}

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
    expect(JSON.parse(pod?.metadata?.annotations?.[PROXY_ANNOTATION.rules] ?? "")).toEqual({
      allow: ["allowed.test", "*.wild.test", "tls.test"],
    });
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

  it("reaches an allowed domain with curl over HTTP and HTTPS, and logs it", async () => {
    const plain = await curl(sb, "http://allowed.test/");
    expect(plain.stdout, plain.stderr).toBe("hello from allowed.test\n");
    const tls = await curl(sb, "https://tls.test/");
    expect(tls.stdout, tls.stderr).toBe("hello from tls.test\n");
    const log = await sb.networkLog();
    expect(log.filter((d) => d.allowed).map((d) => `${d.host}:${d.port}`)).toEqual(
      expect.arrayContaining(["allowed.test:80", "tls.test:443"]),
    );
    expect(log.find((d) => d.host === "allowed.test")?.reason).toBe('allowed by "allowed.test"');
  });

  it("works with Node's fetch (the proxy variables honoured) and refuses a denied host there too", async () => {
    const script = `
      const a = await (await fetch("https://tls.test/")).text();
      const c = await fetch("http://denied.test/").then((r) => String(r.status), (e) => [e.cause?.message, e.cause?.cause?.message].join(" "));
      console.log(JSON.stringify([a, c]));`;
    const r = await sb.exec(`NODE_EXTRA_CA_CERTS=/tmp/ca.pem node --input-type=module -e '${script}'`, {
      timeoutMs: 30_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const [a, c] = JSON.parse(r.stdout) as [string, string];
    expect(a).toBe("hello from tls.test\n");
    expect(c).toContain("403");
  });

  it("refuses a domain not on the list (403 with the rule to add), and a wildcard's bare domain or look-alike", async () => {
    const plain = await curl(sb, "http://denied.test/", "-i");
    expect(plain.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(plain.stdout).toContain('denied.test is not on this sandbox\'s network allow-list; add "denied.test"');
    const tls = await curl(sb, "https://denied.test/", "-v");
    expect(tls.exitCode).not.toBe(0);
    expect(tls.stderr).toMatch(/403/);
    expect((await curl(sb, "http://deep.sub.wild.test/")).stdout).toBe("hello from deep.sub.wild.test\n");
    for (const host of ["wild.test", "evilwild.test"]) {
      expect((await curl(sb, `http://${host}/`, "-i")).stdout, host).toMatch(/^HTTP\/1\.1 403/);
    }
    // The test host's address, asked for literally: not on the list either.
    expect((await curl(sb, `http://${hosts.address}/`, "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
  });

  it("refuses names resolving to private, loopback or metadata addresses, and rebinding", async () => {
    await sb.setNetwork({ allow: ["internal.test", "loop.test", "meta.test", "169.254.169.254", "rebind.test"] });
    for (const url of ["http://internal.test/", "http://loop.test/", "http://meta.test/", "http://169.254.169.254/"]) {
      const r = await curl(sb, url, "-i");
      expect(r.stdout, url).toMatch(/^HTTP\/1\.1 403/);
      expect(r.stdout, url).toContain("special-purpose");
    }
    // First answer: the test host; every later one 127.0.0.1. The proxy dials what it checked.
    expect((await curl(sb, "http://rebind.test/")).stdout).toBe("hello from rebind.test\n");
    const second = await curl(sb, "http://rebind.test/", "-i");
    expect(second.stdout).toContain("resolves to 127.0.0.1");
  });

  it("gets nowhere without the proxy: direct IP, other ports, UDP, DNS, other pods, the API server", async () => {
    await sb.setNetwork({ allow: ["allowed.test"] });
    const proxy = (await proxyPodOf(sb)).status?.podIP as string;
    await using other = await kiln.create({ network: { allow: [] } });
    const otherIp = (await engine.resolve(other.id))?.status?.podIP as string;
    const apiPort = new URL(engine.kubeConfig.getCurrentCluster()?.server ?? "").port;
    const gateway = hosts.address.replace(/\.\d+$/, ".1");
    const probe = String.raw`
import json, socket, struct, sys
host, proxy, other, gateway, api = sys.argv[1:6]
def attempt(fn):
    try:
        return "reached: " + str(fn())
    except Exception as e:
        return f"{type(e).__name__}: {e}"
def tcp(addr, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(3); s.connect((addr, port)); s.close(); return port
def udp(addr, port, payload=b"kiln"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(payload, (addr, port)); return s.recvfrom(512)
def answers(addr):
    # A query for a name only the test host's DNS knows: an answer with records would be a way out.
    q = struct.pack("!HHHHHH", 0x4b1e, 0x0100, 1, 0, 0, 0) + b"\x07allowed\x04test\x00" + struct.pack("!HH", 1, 1)
    data = udp(addr, 53, q)[0]
    ancount = struct.unpack("!H", data[6:8])[0]
    if ancount == 0:
        raise OSError(f"an answer without records (rcode {data[3] & 15})")
    return ancount
print(json.dumps({
  "tcp80": attempt(lambda: tcp(host, 80)),
  "tcp443": attempt(lambda: tcp(host, 443)),
  "udp": attempt(lambda: udp(host, 5353)),
  "dns-host": attempt(lambda: answers(host)),
  "dns-tcp": attempt(lambda: tcp(host, 53)),
  "dns-local": attempt(lambda: answers("127.0.0.11")),
  "resolve": attempt(lambda: socket.getaddrinfo("allowed.test", 80)),
  "ipv6": attempt(lambda: tcp("2001:db8::1", 80, socket.AF_INET6)),
  "metadata": attempt(lambda: tcp("169.254.169.254", 80)),
  "other-pod": attempt(lambda: tcp(other, 3128)),
  "node": attempt(lambda: tcp(gateway, int(api))),
  "proxy-other-port": attempt(lambda: tcp(proxy, 22)),
  "proxy-udp": attempt(lambda: udp(proxy, 3128)),
  "proxy": attempt(lambda: tcp(proxy, 3128)),
}))`;
    const r = await sb.exec(
      `python3 - ${hosts.address} ${proxy} ${otherIp} ${gateway} ${apiPort} <<'EOF'\n${probe}\nEOF`,
      {
        timeoutMs: 90_000,
      },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, string>;
    for (const [k, v] of Object.entries(result)) {
      if (k === "proxy") expect(v, k).toBe("reached: 3128");
      else expect(v, k).not.toMatch(/^reached/);
    }
  }, 120_000);

  it("refuses a CONNECT tunnel whose TLS server name is not the CONNECT host", async () => {
    await sb.setNetwork({ allow: ["tls.test"] });
    const r = await sb.exec(`python3 - <<'EOF'\n${SNI_MISMATCH_PROBE}\nEOF`, { timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { same: string; other: string };
    expect(result.same).toBe("HTTP/1.1 200 Connection Established | hello from tls.test\n");
    expect(result.other).toMatch(/^HTTP\/1\.1 200 Connection Established \| (SSL|ConnectionReset|OSError|EOF)/);
    expect((await sb.networkLog()).at(-1)?.reason).toBe(
      'kiln: TLS server name "other.test" does not match CONNECT host "tls.test"',
    );
  });

  it("applies setNetwork to the next connection; 'none' denies everything; the mode is fixed", async () => {
    await sb.setNetwork({ allow: ["denied.test"] });
    expect((await curl(sb, "http://denied.test/")).stdout).toBe("hello from denied.test\n");
    expect((await curl(sb, "http://allowed.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
    expect((await sb.info()).network).toEqual({ allow: ["denied.test"] });
    await sb.setNetwork("none");
    expect((await curl(sb, "http://denied.test/", "-i")).stdout).toContain('network is "none"');
    expect((await sb.info()).network).toBe("none");
    await expect(sb.setNetwork("egress")).rejects.toThrow(NotSupportedError);
    await sb.setNetwork({ allow: ["allowed.test"] });
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
  });

  it("none and egress sandboxes cannot use the proxy, and cannot switch to an allow-list", async () => {
    const proxy = (await proxyPodOf(sb)).status?.podIP as string;
    for (const network of ["none", "egress"] as const) {
      await using s = await kiln.create({ network });
      const r = await s.exec(
        `python3 -c "import socket; s=socket.socket(); s.settimeout(3); s.connect(('${proxy}', 3128)); print('reached')"`,
      );
      expect(r.stdout, network).not.toContain("reached");
      await expect(s.setNetwork({ allow: ["allowed.test"] })).rejects.toThrow(/cannot switch to an allow-list/);
    }
  }, 120_000);
});

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
  it("survives hostile requests from a sandbox (it serves every allow-list sandbox of its replica)", async () => {
    await sb.setNetwork({ allow: ["allowed.test"] });
    const restarts = async () => (await proxyPodOf(sb)).status?.containerStatuses?.[0]?.restartCount ?? 0;
    const before = await restarts();
    const r = await sb.exec(`python3 - <<'EOF'\n${HOSTILE_PROXY_REQUESTS}\nEOF`, { timeoutMs: 120_000 });
    expect(r.stdout, r.stderr).toBe("sent\n");
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
    expect(await restarts()).toBe(before);
  }, 180_000);

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
