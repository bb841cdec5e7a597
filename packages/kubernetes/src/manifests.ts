/**
 * The Kubernetes objects Kiln creates, as plain manifests (pure functions, validated in tests
 * against the upstream OpenAPI schemas): a Pod per sandbox, a ReplicaSet per warm-pool shape,
 * and three shared NetworkPolicies per namespace that give each network mode its egress.
 *
 * Where Kiln keeps its state on these objects (any Kiln instance reads it back):
 * - label `kiln.kind` (sandbox | pool), `kiln.shape` (pool members), `kiln.id` (a sandbox's
 *   id, 32 hex digits), `kiln.name-hash` (its container name, hashed: names may be longer or
 *   use characters a label value may not), `kiln.network-mode` (none | egress | allow: what the
 *   NetworkPolicies select on), and every Kiln label whose key and value are valid as a
 *   Kubernetes label (so list filters become label selectors);
 * - annotation `kiln.labels` (every Kiln label, JSON: the source of truth),
 *   `kiln.container-name`, `kiln.image` (the image as Kiln names it), `kiln.last-activity`.
 */
import { createHash } from "node:crypto";
import { type ContainerSpec, EGRESS_BLOCKED_V4, EGRESS_BLOCKED_V6, EGRESS_GLOBAL_V6, LABEL } from "@kiln/core/engine";
import type { V1NetworkPolicy, V1Pod, V1ReplicaSet } from "@kubernetes/client-node";
import { claimName } from "./claims.ts";

export const K8S_LABEL = {
  kind: LABEL.kind,
  shape: LABEL.shape,
  id: "kiln.id",
  nameHash: "kiln.name-hash",
  networkMode: "kiln.network-mode",
} as const;

export const ANNOTATION = {
  labels: "kiln.labels",
  containerName: "kiln.container-name",
  image: "kiln.image",
  lastActivity: "kiln.last-activity",
  /** Files core writes to /etc/kiln (its record, env, agent settings), kept here instead. */
  etcPrefix: "kiln.etc.",
} as const;

/** The container's name in every sandbox pod. */
export const CONTAINER = "sandbox";
/** The runtime image's unprivileged user (runtime-image.ts: useradd --uid 1000). */
export const SANDBOX_UID = 1000;
/**
 * Where the agent listens: an emptyDir (the pod cannot start as root to own a tmpfs as on
 * Docker). Not the image's /run/kiln: an emptyDir over it works on a real kubelet (emptyDir
 * roots are 0777), but Docker-backed simulators copy the image directory's root-only 0700 mode
 * onto the tmpfs; a directory the image lacks is writable everywhere. KILN_AGENT_SOCKET tells
 * the agent, and the engine points core's bridge command at it (engine.ts openProcess).
 */
export const AGENT_SOCKET_DIR = "/run/kiln-agent";
export const AGENT_SOCKET = `${AGENT_SOCKET_DIR}/agent.sock`;
/** /tmp's size, as on Docker (defaults.ts DEFAULT_TMPFS_MB). */
export const TMP_MB = 512;
/** The writable layer's cap when a sandbox asks for none (defaults.ts DEFAULT_DISK_MB). */
export const DEFAULT_DISK_MB = 4096;
/** Grace before the kubelet kills a stopping sandbox (defaults.ts STOP_TIMEOUT_MS). */
export const TERMINATION_GRACE_SECONDS = 2;

export const POLICY_NAMES = {
  deny: "kiln-sandboxes-deny-all",
  egress: "kiln-egress-internet",
  allow: "kiln-egress-allow-list-proxy",
} as const;

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** True when `key`=`value` can be a Kubernetes label (no prefix: Kiln's keys have none). */
export function validLabel(key: string, value: string): boolean {
  return LABEL_NAME.test(key) && LABEL_VALUE.test(value);
}

/** The hash of a container name, as label `kiln.name-hash` holds it. */
export function nameHash(name: string): string {
  return createHash("sha256").update(name).digest("hex").slice(0, 40);
}

export function networkMode(network: ContainerSpec["network"]): "none" | "egress" | "allow" {
  return typeof network === "object" ? "allow" : network;
}

/** The Kubernetes labels for a set of Kiln labels: every pair valid as one, and Kiln's own. */
export function podLabels(
  kilnLabels: Record<string, string>,
  extra: { id?: string; name: string; network: ContainerSpec["network"] },
  extraLabels: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = { ...extraLabels };
  for (const [k, v] of Object.entries(kilnLabels)) if (validLabel(k, v)) out[k] = v;
  if (extra.id !== undefined) out[K8S_LABEL.id] = extra.id;
  out[K8S_LABEL.nameHash] = nameHash(extra.name);
  out[K8S_LABEL.networkMode] = networkMode(extra.network);
  return out;
}

export interface PodOptions {
  namespace: string;
  imageRegistry?: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  runtimeClassName?: string;
  maxLifetimeSeconds?: number;
  requestRatio?: number;
  extraLabels?: Record<string, string>;
}

function quantityCpu(cpus: number): string {
  return `${Math.max(1, Math.round(cpus * 1000))}m`;
}

/**
 * The pod's spec (no metadata): Kiln's hardening and limits, in Kubernetes' terms.
 * `restartPolicy`: "Never" for a sandbox pod (a stopped sandbox stays stopped); a ReplicaSet's
 * template must say "Always" (the API refuses anything else), so a claimed pool member keeps
 * it: its container restarting means a fresh filesystem, which the engine reports as stopped.
 */
export function podSpec(
  spec: ContainerSpec,
  o: PodOptions,
  restartPolicy: "Never" | "Always" = "Never",
): NonNullable<V1Pod["spec"]> {
  const ratio = o.requestRatio ?? 1;
  const disk = spec.diskMb ?? DEFAULT_DISK_MB;
  const limits = {
    cpu: quantityCpu(spec.cpus),
    memory: `${spec.memoryMb}Mi`,
    "ephemeral-storage": `${disk}Mi`,
  };
  const requests = {
    cpu: quantityCpu(spec.cpus * ratio),
    memory: `${Math.max(1, Math.round(spec.memoryMb * ratio))}Mi`,
    "ephemeral-storage": `${Math.max(1, Math.round(disk * ratio))}Mi`,
  };
  return {
    restartPolicy,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostname: "sandbox",
    terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
    ...(o.runtimeClassName === undefined ? {} : { runtimeClassName: o.runtimeClassName }),
    ...(o.maxLifetimeSeconds === undefined ? {} : { activeDeadlineSeconds: o.maxLifetimeSeconds }),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SANDBOX_UID,
      runAsGroup: SANDBOX_UID,
      fsGroup: SANDBOX_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: CONTAINER,
        image: `${o.imageRegistry ?? ""}${spec.image}`,
        imagePullPolicy: o.imagePullPolicy ?? "IfNotPresent",
        env: [
          ...Object.entries(spec.env).map(([name, value]) => ({ name, value })),
          { name: "KILN_AGENT_SOCKET", value: AGENT_SOCKET },
        ],
        workingDir: "/workspace",
        resources: { limits, requests },
        securityContext: {
          allowPrivilegeEscalation: false,
          privileged: false,
          capabilities: { drop: ["ALL"] },
          // As on Docker (ReadonlyRootfs: false): packages install where the user expects them.
          readOnlyRootFilesystem: false,
          runAsNonRoot: true,
          runAsUser: SANDBOX_UID,
          runAsGroup: SANDBOX_UID,
          seccompProfile: { type: "RuntimeDefault" },
        },
        // Ready once the agent listens: what a warm pool's ReplicaSet counts.
        readinessProbe: {
          exec: { command: ["test", "-S", AGENT_SOCKET] },
          periodSeconds: 1,
          failureThreshold: 1,
        },
        volumeMounts: [
          { name: "tmp", mountPath: "/tmp" },
          { name: "run-kiln", mountPath: AGENT_SOCKET_DIR },
          // Kiln's volumes: PersistentVolumeClaims (persistence.ts).
          ...spec.volumes.map((v, i) => ({ name: `kiln-vol-${i}`, mountPath: v.mountPath, readOnly: v.readOnly })),
        ],
      },
    ],
    volumes: [
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: `${TMP_MB}Mi` } },
      { name: "run-kiln", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
      ...spec.volumes.map((v, i) => ({
        name: `kiln-vol-${i}`,
        persistentVolumeClaim: { claimName: claimName(v.volume), readOnly: v.readOnly },
      })),
    ],
  };
}

/** The annotations of a pod: Kiln's labels (JSON), its container name, its image. */
export function podAnnotations(spec: ContainerSpec, name = spec.name): Record<string, string> {
  return {
    [ANNOTATION.labels]: JSON.stringify(spec.labels),
    [ANNOTATION.containerName]: name,
    [ANNOTATION.image]: spec.image,
  };
}

/** A cold-created sandbox: pod `kiln-<id>`. */
export function sandboxPod(id: string, spec: ContainerSpec, o: PodOptions): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `kiln-${id}`,
      namespace: o.namespace,
      labels: podLabels(spec.labels, { id, name: spec.name, network: spec.network }, o.extraLabels),
      annotations: podAnnotations(spec),
    },
    spec: podSpec(spec, o),
  };
}

/** The ReplicaSet of a warm pool shape: `size` members, selected by kind=pool and the shape key. */
export function poolReplicaSet(shape: string, size: number, spec: ContainerSpec, o: PodOptions): V1ReplicaSet {
  const selector = { [K8S_LABEL.kind]: "pool", [K8S_LABEL.shape]: shape };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `kiln-pool-${shape}`,
      namespace: o.namespace,
      labels: { ...o.extraLabels, ...selector },
    },
    spec: {
      replicas: size,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: { ...podLabels(spec.labels, { name: spec.name, network: spec.network }, o.extraLabels), ...selector },
          annotations: podAnnotations(spec),
        },
        spec: podSpec(spec, o, "Always"),
      },
    },
  };
}

export interface PolicyOptions {
  namespace: string;
  dns?: { namespace: string; podLabels: Record<string, string> } | false;
  /** The egress proxy allow-list sandboxes may reach (pods in the same namespace). */
  egressProxy?: { podLabels: Record<string, string>; port: number };
  extraLabels?: Record<string, string>;
}

export const DEFAULT_DNS = { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" } };

/**
 * Egress rules for "the internet": every address but the blocked ranges (core's list, the same
 * the Docker engine's filter uses), plus `trusted` CIDRs (tests' hosts), and the cluster's DNS
 * pods on port 53 unless `dns` is false. Shared by the `egress` mode's policy and the egress proxy's.
 */
export function internetEgress(
  dnsOption: PolicyOptions["dns"],
  trusted: string[] = [],
): NonNullable<NonNullable<V1NetworkPolicy["spec"]>["egress"]> {
  const dns = dnsOption === false ? undefined : (dnsOption ?? DEFAULT_DNS);
  return [
    {
      to: [
        { ipBlock: { cidr: "0.0.0.0/0", except: EGRESS_BLOCKED_V4.filter((c) => c !== "0.0.0.0/0") } },
        { ipBlock: { cidr: EGRESS_GLOBAL_V6, except: [...EGRESS_BLOCKED_V6] } },
        ...trusted.map((cidr) => ({ ipBlock: { cidr: cidr.includes("/") ? cidr : `${cidr}/32` } })),
      ],
    },
    ...(dns
      ? [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": dns.namespace } },
                podSelector: { matchLabels: dns.podLabels },
              },
            ],
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
        ]
      : []),
  ];
}

/**
 * The shared policies: every Kiln pod denied all ingress and egress; "egress" pods allowed the
 * internet (0.0.0.0/0 and 2000::/3 minus core's blocked ranges: private, link-local/metadata,
 * CGNAT, multicast, ...) and DNS at the cluster resolver; allow-list pods only the proxy.
 * NetworkPolicies add up (a pod may do what any policy selecting it allows), so the deny-all
 * one plus a mode's allow is exactly that mode.
 */
export function networkPolicies(o: PolicyOptions): V1NetworkPolicy[] {
  const meta = (name: string) => ({ name, namespace: o.namespace, labels: { ...o.extraLabels, "kiln.policy": "1" } });
  const policies: V1NetworkPolicy[] = [
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta(POLICY_NAMES.deny),
      spec: {
        podSelector: { matchExpressions: [{ key: K8S_LABEL.kind, operator: "Exists" }] },
        policyTypes: ["Ingress", "Egress"],
        ingress: [],
        egress: [],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta(POLICY_NAMES.egress),
      spec: {
        podSelector: { matchLabels: { [K8S_LABEL.networkMode]: "egress" } },
        policyTypes: ["Egress"],
        egress: internetEgress(o.dns),
      },
    },
  ];
  if (o.egressProxy) {
    policies.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta(POLICY_NAMES.allow),
      spec: {
        podSelector: { matchLabels: { [K8S_LABEL.networkMode]: "allow" } },
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ podSelector: { matchLabels: o.egressProxy.podLabels } }],
            ports: [{ protocol: "TCP", port: o.egressProxy.port }],
          },
        ],
      },
    });
  }
  return policies;
}
