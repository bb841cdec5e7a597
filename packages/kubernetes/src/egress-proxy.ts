/**
 * Allow-list sandboxes (`network: { allow: [...] }`) on Kubernetes: Kiln's egress proxy runs in
 * the namespace, and it is the only thing such a sandbox can reach.
 *
 * - **The proxy** is core's own program (packages/core/proxy/allow-proxy.mjs, the one the Docker
 *   engine runs), run by the runtime image's Node in a ReplicaSet `kiln-egress-proxy-<hash>`
 *   (hash of the program, its configuration and image; a Kiln with another configuration gets
 *   its own), hardened like a sandbox (non-root, no capabilities, read-only root, seccomp
 *   RuntimeDefault, no service-account token). Any Kiln instance finds it by name; the
 *   ReplicaSet controller replaces a replica that goes away, whether or not a Kiln runs.
 * - **Its NetworkPolicy** `kiln-egress-proxy-<hash>`: ingress only from allow-list sandboxes
 *   (`kiln.network-mode=allow`) on TCP 3128; egress to the internet minus core's blocked ranges
 *   (the same ipBlocks as `network: "egress"`) and DNS at the cluster resolver. The proxy also
 *   refuses those ranges itself after resolving, on the address it then dials (two layers).
 * - **A sandbox's NetworkPolicy** (`kiln-egress-allow-list-proxy`, manifests.ts): egress only to
 *   the proxy's pods on TCP 3128; no DNS (the proxy resolves), nothing else.
 * - **Per-sandbox rules, keyed by pod IP**: each sandbox is bound, at creation, to one Ready
 *   replica (annotation `kiln.egress-proxy`; its `HTTP_PROXY` & co. name that replica's pod IP).
 *   Kiln writes `policies/<sandbox pod IP>.json` into that replica's data directory over
 *   pods/exec once the sandbox's pod has its IP and before create() returns, and again on every
 *   setNetwork. The proxy reads the file on every connection, so a change applies to the next
 *   one. The rules' source of truth is the sandbox pod's annotation `kiln.network-allow`; the
 *   sweeper (and every bind) writes back any file a restarted replica lost (`tar
 *   --skip-old-files`: a file written meanwhile by a setNetwork is never clobbered by an older
 *   copy) and removes files whose pod is gone. A pod IP identifies a sandbox because a sandbox
 *   cannot send from another address (no NET_RAW, no NET_ADMIN) and only allow-list pods of
 *   this namespace may reach the proxy at all.
 * - **Fail closed**: a client IP with no file is refused by the proxy; a sandbox is not created
 *   unless a replica is Ready within `readyTimeoutMs` (the error says what the replica waits
 *   for); and the engine refuses every sandbox unless the CNI is declared to enforce
 *   NetworkPolicy (engine.ts admit).
 *
 * A sandbox stays bound to its replica: if that pod goes away (deleted, evicted, its node gone),
 * the sandbox's egress stops (nothing answers at its proxy address) until it is recreated. A
 * Service in front of the replicas would survive that, but every replica would then need every
 * sandbox's rules; see docs/scale-out.md.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { NetworkDecision } from "@kiln/core";
import { EngineError, NotSupportedError } from "@kiln/core";
import {
  ALLOW_PROXY_SOURCE,
  EGRESS_BLOCKED_V4,
  EGRESS_BLOCKED_V6,
  EGRESS_GLOBAL_V6,
  PROXY_PORT,
  parseNetworkLog,
  proxyEnv,
} from "@kiln/core/engine";
import type {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  V1NetworkPolicy,
  V1Pod,
  V1ReplicaSet,
} from "@kubernetes/client-node";
import { pack } from "tar-stream";
import { type ExecTarget, runExec } from "./exec.ts";
import { internetEgress, K8S_LABEL } from "./manifests.ts";

export { PROXY_PORT };

export const PROXY_LABEL = {
  /** On the proxy's ReplicaSet and pods: "egress-proxy" (what sandboxes' policy selects). */
  component: "kiln.component",
  /** On the proxy's ReplicaSet and pods: its configuration hash. */
  hash: "kiln.egress-proxy",
} as const;
export const PROXY_COMPONENT = "egress-proxy";

export const PROXY_ANNOTATION = {
  /** On an allow-list sandbox pod: the proxy pod it is bound to. */
  proxy: "kiln.egress-proxy",
  /** On an allow-list sandbox pod: its rules, `{"allow":[...]}` or `{"none":true}` (source of truth). */
  rules: "kiln.network-allow",
} as const;

export const PROXY_CONTAINER = "proxy";
/** The proxy's data directory: an emptyDir (survives container restarts on a real kubelet). */
export const PROXY_DATA = "/var/lib/kiln-proxy";
/** nobody: the proxy needs no identity of its own. */
export const PROXY_UID = 65534;
/** A proxy ReplicaSet no sandbox is bound to is deleted once it is this old. */
export const PROXY_IDLE_GRACE_MS = 2 * 60_000;

export interface EgressProxyOptions {
  /** The proxy's image: any image with Node 22+ and bash (default: the image of the first allow-list sandbox, i.e. the runtime image). */
  image?: string;
  /** Proxy replicas; each sandbox is bound to one. @default 1 */
  replicas?: number;
  /** How long a create waits for a Ready replica before refusing. @default 60000 */
  readyTimeoutMs?: number;
  /** Extra addresses/CIDRs the proxy never dials (e.g. the cluster's node, pod and service CIDRs if they are public). */
  deny?: string[];
  /** Test-only: CIDRs exempt from the refusal of private addresses (and allowed by the proxy's NetworkPolicy). */
  trust?: string[];
  /** Test-only: names answered before DNS. */
  hosts?: Record<string, string>;
  /** Test-only: a DNS server the proxy asks instead of the cluster's. */
  resolver?: string;
}

/** A sandbox's rules as the proxy and the annotation hold them. */
export type ProxyRules = { allow: string[] } | { none: true };

let source: string | undefined;
function proxySource(): string {
  source ??= readFileSync(ALLOW_PROXY_SOURCE, "utf8");
  return source;
}

/** The proxy's configuration (its KILN_PROXY_CONFIG), as core's proxy reads it. */
export function proxyConfig(o: EgressProxyOptions): Record<string, unknown> {
  return {
    port: PROXY_PORT,
    dataDir: PROXY_DATA,
    blockedV4: EGRESS_BLOCKED_V4,
    blockedV6: EGRESS_BLOCKED_V6,
    globalV6: EGRESS_GLOBAL_V6,
    deny: o.deny ?? [],
    trust: o.trust ?? [],
    hosts: o.hosts ?? {},
    ...(o.resolver ? { resolver: o.resolver } : {}),
  };
}

/** The configuration hash naming the proxy's ReplicaSet and policy. */
export function proxyHash(image: string, o: EgressProxyOptions): string {
  return createHash("sha256")
    .update(proxySource())
    .update(JSON.stringify(proxyConfig(o)))
    .update(image)
    .digest("hex")
    .slice(0, 12);
}

export interface ProxyManifestOptions {
  namespace: string;
  image: string;
  replicas: number;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  extraLabels?: Record<string, string>;
  dns?: { namespace: string; podLabels: Record<string, string> } | false;
}

export function proxyName(hash: string): string {
  return `kiln-egress-proxy-${hash}`;
}

/** The proxy's ReplicaSet: core's proxy program, hardened, one data emptyDir per replica. */
export function proxyReplicaSet(hash: string, o: ProxyManifestOptions, p: EgressProxyOptions): V1ReplicaSet {
  const selector = { [PROXY_LABEL.component]: PROXY_COMPONENT, [PROXY_LABEL.hash]: hash };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name: proxyName(hash), namespace: o.namespace, labels: { ...o.extraLabels, ...selector } },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...o.extraLabels, ...selector } },
        spec: {
          restartPolicy: "Always",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 5,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: PROXY_UID,
            runAsGroup: PROXY_UID,
            fsGroup: PROXY_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: PROXY_CONTAINER,
              image: o.image,
              imagePullPolicy: o.imagePullPolicy ?? "IfNotPresent",
              command: ["node", "--input-type=module", "-e", proxySource()],
              env: [{ name: "KILN_PROXY_CONFIG", value: JSON.stringify(proxyConfig(p)) }],
              ports: [{ name: "proxy", containerPort: PROXY_PORT, protocol: "TCP" }],
              resources: {
                limits: { cpu: "1", memory: "256Mi", "ephemeral-storage": "1Gi" },
                requests: { cpu: "100m", memory: "128Mi", "ephemeral-storage": "64Mi" },
              },
              securityContext: {
                allowPrivilegeEscalation: false,
                privileged: false,
                capabilities: { drop: ["ALL"] },
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                runAsUser: PROXY_UID,
                runAsGroup: PROXY_UID,
                seccompProfile: { type: "RuntimeDefault" },
              },
              // Ready once it accepts connections (an exec probe: bash's /dev/tcp, no extra tool).
              readinessProbe: {
                exec: { command: ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${PROXY_PORT}`] },
                periodSeconds: 2,
                failureThreshold: 2,
              },
              volumeMounts: [
                { name: "data", mountPath: PROXY_DATA },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          volumes: [
            // Per-sandbox rules and bounded logs (256 KiB per sandbox).
            { name: "data", emptyDir: { sizeLimit: "1Gi" } },
            { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
          ],
        },
      },
    },
  };
}

/**
 * The proxy's own policy: reached only by allow-list sandboxes on its port; reaches the internet
 * minus core's blocked ranges, DNS, and (tests only) the trusted CIDRs.
 */
export function proxyNetworkPolicy(hash: string, o: ProxyManifestOptions, p: EgressProxyOptions): V1NetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: proxyName(hash),
      namespace: o.namespace,
      labels: { ...o.extraLabels, "kiln.policy": "1", [PROXY_LABEL.hash]: hash },
    },
    spec: {
      podSelector: { matchLabels: { [PROXY_LABEL.component]: PROXY_COMPONENT, [PROXY_LABEL.hash]: hash } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          // client-node names it _from (its serializer writes "from"): the API field is `from`.
          _from: [{ podSelector: { matchLabels: { [K8S_LABEL.networkMode]: "allow" } } }],
          ports: [{ protocol: "TCP", port: PROXY_PORT }],
        },
      ],
      egress: internetEgress(o.dns, p.trust),
    },
  };
}

/** The labels sandboxes' policy uses to select the proxy's pods (any configuration). */
export const PROXY_POD_LABELS = { [PROXY_LABEL.component]: PROXY_COMPONENT };

/** What the engine gives the proxy: the API clients and how it maps failures. */
export interface ProxyHost {
  readonly namespace: string;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly networking: NetworkingV1Api;
  readonly kubeConfig: KubeConfig;
  readonly options: {
    egressProxy?: EgressProxyOptions;
    extraLabels?: Record<string, string>;
    imageRegistry?: string;
    imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
    dns?: { namespace: string; podLabels: Record<string, string> } | false;
    execProtocols?: string[];
  };
  fail(err: unknown, what: string): never;
}

const statusOf = (err: unknown) => (err as { code?: number }).code;

function ready(pod: V1Pod): boolean {
  return (
    pod.status?.phase === "Running" &&
    !pod.metadata?.deletionTimestamp &&
    (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True") &&
    !!pod.status?.podIP
  );
}

export function parseRules(text: string | undefined): ProxyRules | undefined {
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as { allow?: unknown; none?: unknown };
    if (r.none === true) return { none: true };
    if (Array.isArray(r.allow) && r.allow.every((x) => typeof x === "string")) return { allow: r.allow as string[] };
  } catch {
    // not ours
  }
  return undefined;
}

function policyFile(id: string, rules: ProxyRules): string {
  return JSON.stringify("none" in rules ? { holder: id, none: true, allow: [] } : { holder: id, allow: rules.allow });
}

/** A safe file name for a pod IP (the proxy strips the same characters). */
function ipFile(ip: string): string {
  return `${ip.replace(/[^0-9a-fA-F.:]/g, "")}.json`;
}

/** Kiln's egress proxy in one namespace. A KubernetesEngine owns one. */
export class EgressProxy {
  readonly #host: ProxyHost;
  /** Configuration hashes whose ReplicaSet and policy this process has made sure of. */
  readonly #ensured = new Map<string, Promise<void>>();

  constructor(host: ProxyHost) {
    this.#host = host;
  }

  get #o(): EgressProxyOptions {
    return this.#host.options.egressProxy ?? {};
  }

  #manifestOptions(image: string): ProxyManifestOptions {
    const h = this.#host.options;
    return {
      namespace: this.#host.namespace,
      image: `${h.imageRegistry ?? ""}${image}`,
      replicas: this.#o.replicas ?? 1,
      ...(h.imagePullPolicy === undefined ? {} : { imagePullPolicy: h.imagePullPolicy }),
      ...(h.extraLabels === undefined ? {} : { extraLabels: h.extraLabels }),
      ...(h.dns === undefined ? {} : { dns: h.dns }),
    };
  }

  #target(pod: string): ExecTarget {
    const protocols = this.#host.options.execProtocols;
    return {
      kubeConfig: this.#host.kubeConfig,
      namespace: this.#host.namespace,
      pod,
      container: PROXY_CONTAINER,
      ...(protocols === undefined ? {} : { protocols }),
    };
  }

  /** The proxy's ReplicaSet and NetworkPolicy exist (made by this or any Kiln); its hash. */
  async #ensure(sandboxImage: string): Promise<string> {
    const image = this.#o.image ?? sandboxImage;
    const hash = proxyHash(image, this.#o);
    let done = this.#ensured.get(hash);
    if (!done) {
      done = this.#create(hash, image).catch((err) => {
        this.#ensured.delete(hash);
        throw err;
      });
      this.#ensured.set(hash, done);
    }
    await done;
    return hash;
  }

  async #create(hash: string, image: string): Promise<void> {
    const namespace = this.#host.namespace;
    const mo = this.#manifestOptions(image);
    const policy = proxyNetworkPolicy(hash, mo, this.#o);
    try {
      await this.#host.networking.createNamespacedNetworkPolicy({ namespace, body: policy });
    } catch (err) {
      if (statusOf(err) !== 409) this.#host.fail(err, "create the egress proxy's network policy");
    }
    try {
      await this.#host.apps.createNamespacedReplicaSet({ namespace, body: proxyReplicaSet(hash, mo, this.#o) });
    } catch (err) {
      if (statusOf(err) !== 409) this.#host.fail(err, "create Kiln's egress proxy");
    }
  }

  async #pods(hash: string): Promise<V1Pod[]> {
    try {
      const list = await this.#host.core.listNamespacedPod({
        namespace: this.#host.namespace,
        labelSelector: `${PROXY_LABEL.component}=${PROXY_COMPONENT},${PROXY_LABEL.hash}=${hash}`,
      });
      return list.items;
    } catch (err) {
      this.#host.fail(err, "list the egress proxy's pods");
    }
  }

  /**
   * For a new allow-list sandbox: a Ready proxy replica (waiting up to readyTimeoutMs; refusing
   * with what it waits for), the annotations binding the sandbox to it, and the environment
   * that points its tools at it.
   */
  async bind(
    sandboxImage: string,
    rules: ProxyRules,
  ): Promise<{ env: Record<string, string>; annotations: Record<string, string> }> {
    const hash = await this.#ensure(sandboxImage);
    const timeout = this.#o.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeout;
    let pods: V1Pod[] = [];
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      pods = await this.#pods(hash);
      const up = pods.filter(ready);
      if (up.length > 0) {
        // The least-bound replica would need a list of every sandbox; random spreads as well.
        const pod = up[Math.floor(Math.random() * up.length)] as V1Pod;
        return {
          env: proxyEnv(`http://${pod.status?.podIP}:${PROXY_PORT}`),
          annotations: {
            [PROXY_ANNOTATION.proxy]: pod.metadata?.name as string,
            [PROXY_ANNOTATION.rules]: JSON.stringify(rules),
          },
        };
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, delay));
    }
    const why = pods
      .map((p) => {
        const c = p.status?.containerStatuses?.[0]?.state;
        const waiting = c?.waiting ? `${c.waiting.reason}: ${c.waiting.message ?? ""}` : undefined;
        return `${p.metadata?.name} ${p.status?.phase}${waiting ? ` (${waiting})` : ""}`;
      })
      .join("; ");
    throw new EngineError(
      `Kiln's egress proxy (ReplicaSet ${proxyName(hash)}) has no Ready replica after ${timeout} ms (${why || "no pod yet"}); allow-list sandboxes are refused until it has one (their only way out is the proxy)`,
    );
  }

  /** The bound proxy pod of a sandbox pod, running; or a clear error. */
  async #proxyOf(pod: V1Pod): Promise<V1Pod> {
    const name = pod.metadata?.annotations?.[PROXY_ANNOTATION.proxy];
    if (!name) throw new EngineError(`${pod.metadata?.name} is an allow-list sandbox without an egress proxy`);
    let proxy: V1Pod | undefined;
    try {
      proxy = await this.#host.core.readNamespacedPod({ name, namespace: this.#host.namespace });
    } catch (err) {
      if (statusOf(err) !== 404) this.#host.fail(err, "read the egress proxy's pod");
    }
    if (!proxy || proxy.metadata?.deletionTimestamp) {
      throw new EngineError(
        `the egress proxy pod ${name} this sandbox was bound to is gone, so it reaches nothing (fail closed): create a new sandbox`,
      );
    }
    if (proxy.status?.phase !== "Running") {
      throw new EngineError(`the egress proxy pod ${name} is ${proxy.status?.phase}: this sandbox reaches nothing now`);
    }
    return proxy;
  }

  /** Writes files (name → text) into a proxy pod's policies directory; `skipExisting` keeps files already there. */
  async #write(proxy: string, files: Record<string, string>, skipExisting: boolean): Promise<void> {
    const archive = pack();
    const mtime = new Date();
    for (const [name, text] of Object.entries(files)) archive.entry({ name, mode: 0o644, mtime }, text);
    archive.finalize();
    const chunks: Buffer[] = [];
    for await (const c of archive) chunks.push(c as Buffer);
    const tar = Buffer.concat(chunks);
    // Into a fresh directory, then renamed over the old files: the proxy never reads half a file.
    const script = [
      "set -e",
      `cd ${PROXY_DATA}`,
      "mkdir -p policies",
      "t=$(mktemp -d policies.XXXXXX)",
      'head -c "$1" | tar -x -C "$t" --no-same-owner',
      `for f in "$t"/*; do b=$(basename "$f"); ${skipExisting ? '[ -e "policies/$b" ] || ' : ""}mv -f "$f" "policies/$b"; done`,
      'rm -rf "$t"',
    ].join("\n");
    const result = await runExec(this.#target(proxy), ["/bin/sh", "-c", script, "sh", String(tar.length)], tar).catch(
      (err) => this.#host.fail(err, "write the sandbox's rules at Kiln's egress proxy"),
    );
    if (result.exitCode !== 0) {
      throw new EngineError(
        `write the sandbox's rules at Kiln's egress proxy ${proxy}: exit ${result.exitCode}: ${result.stderr.trim()}`,
      );
    }
  }

  /**
   * Puts a sandbox's rules at its proxy, for its pod IP (it must be running): at start, and on
   * every setNetwork (after the annotation, the source of truth, was written).
   */
  async apply(id: string, pod: V1Pod, rules: ProxyRules): Promise<void> {
    const ip = pod.status?.podIP;
    if (!ip) throw new EngineError(`${pod.metadata?.name} has no pod IP yet: its rules cannot be put at the proxy`);
    const proxy = await this.#proxyOf(pod);
    await this.#write(proxy.metadata?.name as string, { [ipFile(ip)]: policyFile(id, rules) }, false);
  }

  /** The rules in force for a sandbox (its annotation). */
  rules(pod: V1Pod): ProxyRules | undefined {
    return parseRules(pod.metadata?.annotations?.[PROXY_ANNOTATION.rules]);
  }

  /** The proxy's recent decisions for a sandbox, oldest first. */
  async log(id: string, pod: V1Pod, limit = 200): Promise<NetworkDecision[]> {
    const proxy = await this.#proxyOf(pod);
    const result = await runExec(this.#target(proxy.metadata?.name as string), [
      "/bin/sh",
      "-c",
      'tail -n "$1" "$2" 2>/dev/null || true',
      "sh",
      String(limit + 1),
      `${PROXY_DATA}/logs/${id}.jsonl`,
    ]).catch((err) => this.#host.fail(err, "read the network log"));
    return parseNetworkLog(result.stdout.toString("utf8"), limit);
  }

  /** Removes a deleted sandbox's rules and log at its proxy (best effort: the sweeper catches stale rules). */
  async forget(pod: V1Pod): Promise<void> {
    const ip = pod.status?.podIP;
    const name = pod.metadata?.annotations?.[PROXY_ANNOTATION.proxy];
    const id = pod.metadata?.labels?.[K8S_LABEL.id];
    if (!name) return;
    const files = [
      ...(ip ? [`${PROXY_DATA}/policies/${ipFile(ip)}`] : []),
      ...(id && /^[0-9a-f]{32}$/.test(id) ? [`${PROXY_DATA}/logs/${id}.jsonl`] : []),
    ];
    if (files.length > 0) await runExec(this.#target(name), ["rm", "-f", ...files]).catch(() => {});
  }

  /**
   * The sweeper's turn: for every running proxy pod, the files of its bound running sandboxes
   * are there (a restarted replica lost none for long: written back if missing) and no file of
   * a pod that is gone is left (its IP may be reused); proxy ReplicaSets no sandbox uses any
   * more, past their grace period, are deleted with their policy. Returns what it removed.
   */
  async reclaim(now = Date.now()): Promise<string[]> {
    const h = this.#host;
    const removed: string[] = [];
    const proxies = (
      await h.core.listNamespacedPod({
        namespace: h.namespace,
        labelSelector: `${PROXY_LABEL.component}=${PROXY_COMPONENT}`,
      })
    ).items.filter((p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp);
    // Each replica's files are listed before the sandboxes: a file there now belongs to a pod
    // that had its IP already, so the list below shows it.
    const files = new Map<string, Set<string>>();
    for (const proxy of proxies) {
      const name = proxy.metadata?.name as string;
      const ls = await runExec(this.#target(name), ["ls", `${PROXY_DATA}/policies`]).catch(() => undefined);
      if (ls?.exitCode === 0) files.set(name, new Set(ls.stdout.toString("utf8").split("\n").filter(Boolean)));
    }
    const bound =
      files.size === 0
        ? []
        : (await h.core.listNamespacedPod({ namespace: h.namespace, labelSelector: K8S_LABEL.networkMode })).items;
    for (const [name, present] of files) {
      const want: Record<string, string> = {};
      for (const pod of bound) {
        const ip = pod.status?.podIP;
        const rules = this.rules(pod);
        if (pod.metadata?.annotations?.[PROXY_ANNOTATION.proxy] !== name || !ip || !rules) continue;
        if (pod.status?.phase !== "Running" || pod.metadata?.deletionTimestamp) continue;
        want[ipFile(ip)] = policyFile(pod.metadata?.labels?.[K8S_LABEL.id] ?? "", rules);
      }
      const missing = Object.fromEntries(Object.entries(want).filter(([f]) => !present.has(f)));
      if (Object.keys(missing).length > 0) await this.#write(name, missing, true).catch(() => {});
      const stale = [...present].filter((f) => f.endsWith(".json") && !(f in want));
      if (stale.length > 0) {
        const r = await runExec(this.#target(name), [
          "rm",
          "-f",
          ...stale.map((f) => `${PROXY_DATA}/policies/${f}`),
        ]).catch(() => undefined);
        if (r?.exitCode === 0) removed.push(...stale.map((f) => `${name}/${f}`));
      }
    }
    // Proxy ReplicaSets no sandbox pod (running or stopped) is bound to.
    const sets = await h.apps
      .listNamespacedReplicaSet({
        namespace: h.namespace,
        labelSelector: `${PROXY_LABEL.component}=${PROXY_COMPONENT}`,
      })
      .catch(() => ({ items: [] }));
    if (sets.items.length === 0) return removed;
    const users = (await h.core.listNamespacedPod({ namespace: h.namespace, labelSelector: K8S_LABEL.networkMode }))
      .items;
    const inUse = new Set(
      users
        .map((p) => p.metadata?.annotations?.[PROXY_ANNOTATION.proxy])
        .filter((n): n is string => !!n)
        .map((n) => n.replace(/-[a-z0-9]{5}$/, "")),
    );
    for (const rs of sets.items) {
      const name = rs.metadata?.name as string;
      const created = Date.parse(String(rs.metadata?.creationTimestamp ?? ""));
      if (inUse.has(name) || Number.isNaN(created) || now - created < PROXY_IDLE_GRACE_MS) continue;
      try {
        await h.apps.deleteNamespacedReplicaSet({ name, namespace: h.namespace, propagationPolicy: "Background" });
        await h.networking.deleteNamespacedNetworkPolicy({ name, namespace: h.namespace }).catch(() => {});
        removed.push(name);
      } catch {
        // gone already
      }
    }
    return removed;
  }
}

/** Refuses a policy change Kubernetes cannot make in place. */
export function refuseModeSwitch(current: string, next: "none" | "egress" | { allow: string[] }): never {
  const to = typeof next === "object" ? "an allow-list" : `"${next}"`;
  throw new NotSupportedError(
    `setNetwork: a sandbox created with network: "${current}" cannot switch to ${to} in place on Kubernetes (its mode is a pod label its NetworkPolicies select on, and an allow-list needs a proxy address in its environment at creation); create a new sandbox, or create it with network: { allow: [] } to change its allow-list later`,
  );
}
