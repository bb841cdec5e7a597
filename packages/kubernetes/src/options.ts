/**
 * The options of kubernetes(): where the cluster is, and what Kiln may assume about it.
 */
import type { Engine } from "@kiln/core/engine";
import type { EgressProxyOptions } from "./egress-proxy.ts";

export interface KubernetesEngineOptions {
  /** A kubeconfig file path, or its YAML text. Default: KUBECONFIG / ~/.kube/config / in-cluster. */
  kubeconfig?: string;
  /** The kubeconfig context to use. Default: its current-context. */
  context?: string;
  /** The namespace every sandbox, pool and policy lives in. */
  namespace: string;
  /**
   * Whether the cluster's CNI enforces NetworkPolicy. The API cannot tell (a NetworkPolicy is
   * stored whether or not anything enforces it), and without enforcement every sandbox would
   * reach the whole network, so Kiln refuses to start sandboxes until you declare "enforced"
   * (Calico, Cilium, Antrea, kube-router, kindnet since 2024, GKE Dataplane V2, ...).
   */
  networkPolicy?: "enforced" | "unknown";
  /**
   * RuntimeClass names per isolation tier: `{ gvisor: "gvisor" }` makes `runtime: "gvisor"`
   * sandboxes run with `runtimeClassName: gvisor`. A tier without an entry is refused.
   */
  runtimeClasses?: { gvisor?: string };
  /** Prefix for image refs in pod specs (e.g. "registry.example:5000/"): where the cluster pulls Kiln's images. */
  imageRegistry?: string;
  /** @default "IfNotPresent" */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /**
   * Where images are built, listed and checked (the cluster cannot build them). Default: the
   * local Docker engine. Point `imageRegistry` at a registry you push its images to.
   */
  images?: Engine;
  /** activeDeadlineSeconds on every sandbox pod: a hard cap on its life, enforced by the kubelet. */
  maxLifetimeSeconds?: number;
  /**
   * Where sandboxes with `network: "egress"` resolve names: the cluster DNS pods they may reach
   * on port 53 (everything else private stays blocked). Default kube-system's k8s-app=kube-dns.
   */
  dns?: { namespace: string; podLabels: Record<string, string> } | false;
  /** Requests as a fraction of the limits (1 = Guaranteed QoS). @default 1 */
  requestRatio?: number;
  /** Labels added to every object Kiln creates (e.g. for your own tooling). */
  extraLabels?: Record<string, string>;
  /**
   * Leave warm pools' ReplicaSets in place when Kiln closes (a fleet of Kiln servers sharing
   * them). Default: close() deletes the ReplicaSet and its unclaimed members, as on Docker.
   */
  keepPools?: boolean;
  /**
   * Kiln's egress proxy for allow-list sandboxes (`network: { allow }`), which the engine runs in
   * the namespace as ReplicaSet `kiln-egress-proxy-<hash>` (egress-proxy.ts): its image (default
   * the runtime image), replicas, readiness wait, and extra addresses it never dials.
   */
  egressProxy?: EgressProxyOptions;
  /** Test-only: the exec subprotocols to offer (default v5, then v4 and older). */
  execProtocols?: string[];
  /**
   * PersistentVolumeClaims for Kiln's volumes (and a stopped sandbox's /workspace): the
   * StorageClass (default: the cluster's default class), each volume's size (a quantity,
   * default "10Gi"; workspaces get the sandbox's diskMb) and access mode (default
   * "ReadWriteOnce": pods mounting one volume then share a node; "ReadWriteMany" needs a class
   * that offers it, e.g. NFS or CephFS).
   */
  volumes?: {
    storageClassName?: string;
    size?: string;
    accessMode?: "ReadWriteOnce" | "ReadWriteMany" | "ReadWriteOncePod";
  };
  /** How long startContainer waits for a pod to run (image pull included). @default 120000 */
  startTimeoutMs?: number;
}
