/**
 * @kiln/kubernetes (experimental): Kiln's sandboxes as Kubernetes Pods.
 *
 * ```ts
 * import { Kiln } from "@kiln/core";
 * import { kubernetes } from "@kiln/kubernetes";
 * const kiln = new Kiln({ engine: kubernetes({ namespace: "kiln", networkPolicy: "enforced" }) });
 * ```
 */
import { KubernetesEngine } from "./engine.ts";
import type { KubernetesEngineOptions } from "./options.ts";

/** An Engine for `new Kiln({ engine })` that runs every sandbox as a Pod in `options.namespace`. */
export function kubernetes(options: KubernetesEngineOptions): KubernetesEngine {
  return new KubernetesEngine(options);
}

export { KubernetesEngine } from "./engine.ts";
export {
  ANNOTATION,
  K8S_LABEL,
  networkPolicies,
  POLICY_NAMES,
  poolReplicaSet,
  sandboxPod,
} from "./manifests.ts";
export type { KubernetesEngineOptions } from "./options.ts";
export {
  DirectorySnapshotStore,
  restoreSnapshot,
  SNAPSHOT_FORMAT,
  type SnapshotManifest,
  type SnapshotStore,
  takeSnapshot,
} from "./snapshots.ts";
