/**
 * The ReplicaSet controller (https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/):
 * - #how-a-replicaset-works: keeps `spec.replicas` active pods (not terminating, not Succeeded or
 *   Failed) that match its selector and name it as their controller ownerReference, creating pods
 *   from the template (generateName `<rs name>-`) or deleting surplus ones;
 * - #non-template-pod-acquisitions: adopts active orphan pods that match the selector;
 * - #isolating-pods-from-a-replicaset: an owned pod relabelled out of the selector is released
 *   (its ownerReference removed) and replaced;
 * - #scaling-a-replicaset: surplus pods go pending before running, unready before ready, lower
 *   `controller.kubernetes.io/pod-deletion-cost` first, newer before older;
 * - status.replicas / fullyLabeledReplicas / readyReplicas / availableReplicas / observedGeneration.
 * Deleting a ReplicaSet garbage-collects its pods (background) or orphans them (propagationPolicy
 * Orphan): https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion
 */
import type { Api, DeleteOptions } from "./api.ts";
import { findResource } from "./resources.ts";
import { selectorFromObject } from "./selectors.ts";
import type { Change, KObject } from "./store.ts";

const PODS = findResource("", "v1", "pods")!;
const RS = findResource("apps", "v1", "replicasets")!;

const active = (p: KObject) =>
  !p.metadata.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";
const isReady = (p: KObject) =>
  (p.status?.conditions ?? []).some((c: KObject) => c.type === "Ready" && c.status === "True");

/** The ownerReferences without `uid`'s; null (removes the field) when none are left. */
function rest(refs: KObject["metadata"]["ownerReferences"] & object, uid: string) {
  const left = refs.filter((r) => r.uid !== uid);
  return left.length ? left : null;
}

export class ReplicaSetController {
  readonly #api: Api;
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Immediate | undefined;
  readonly #unlisten: () => void;
  readonly #log: (line: string) => void;

  constructor(api: Api, log: (line: string) => void) {
    this.#api = api;
    this.#log = log;
    this.#unlisten = api.store.listen((c) => this.#onChange(c));
  }

  #onChange(c: Change): void {
    const ns = c.object.metadata.namespace!;
    if (c.resource === "replicasets") {
      if (c.type !== "DELETED") this.#mark(`${ns}/${c.object.metadata.name}`);
    } else if (c.resource === "pods") {
      for (const rs of this.#api.store.list("replicasets", ns)) this.#mark(`${ns}/${rs.metadata.name}`);
    }
  }

  #mark(key: string): void {
    this.#dirty.add(key);
    this.#timer ??= setImmediate(() => {
      this.#timer = undefined;
      const keys = [...this.#dirty];
      this.#dirty.clear();
      for (const k of keys) {
        const [ns, name] = k.split("/") as [string, string];
        try {
          this.#sync(ns, name);
        } catch (err) {
          this.#log(`replicaset ${k}: ${(err as Error).message}`);
        }
      }
    });
  }

  #sync(ns: string, name: string): void {
    const rs = this.#api.store.get("replicasets", ns, name);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const uid = rs.metadata.uid!;
    const sel = selectorFromObject(rs.spec.selector);
    const owned: KObject[] = [];
    for (const pod of this.#api.store.list("pods", ns).filter(active)) {
      const refs = pod.metadata.ownerReferences ?? [];
      const ctrl = refs.find((r) => r.controller);
      const matches = sel(pod.metadata.labels);
      if (ctrl?.uid === uid) {
        if (matches) owned.push(pod);
        else
          this.#api.patch(PODS, ns, pod.metadata.name, "application/merge-patch+json", {
            metadata: { ownerReferences: rest(refs, uid), resourceVersion: pod.metadata.resourceVersion },
          });
      } else if (!ctrl && matches) {
        owned.push(
          this.#api.patch(PODS, ns, pod.metadata.name, "application/merge-patch+json", {
            metadata: { ownerReferences: [...refs, this.#ownerRef(rs)], resourceVersion: pod.metadata.resourceVersion },
          }),
        );
      }
    }
    const want = rs.spec.replicas ?? 1;
    if (owned.length < want) {
      const tpl = rs.spec.template;
      for (let i = owned.length; i < want; i++) {
        const pod = this.#api.create(PODS, ns, {
          metadata: {
            generateName: `${name}-`,
            labels: { ...(tpl.metadata?.labels ?? {}) },
            annotations: { ...(tpl.metadata?.annotations ?? {}) },
            ownerReferences: [this.#ownerRef(rs)],
          },
          spec: structuredClone(tpl.spec),
        });
        owned.push(pod);
        this.#api.recordEvent(
          rs,
          "Normal",
          "SuccessfulCreate",
          `Created pod: ${pod.metadata.name}`,
          "replicaset-controller",
        );
      }
    } else if (owned.length > want) {
      const rank = (p: KObject) => [
        p.status?.phase === "Running" ? 1 : 0,
        isReady(p) ? 1 : 0,
        Number(p.metadata.annotations?.["controller.kubernetes.io/pod-deletion-cost"] ?? 0),
        -Date.parse(p.metadata.creationTimestamp ?? ""),
      ];
      const victims = [...owned]
        .sort((a, b) => {
          const ra = rank(a);
          const rb = rank(b);
          for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
          return 0;
        })
        .slice(0, owned.length - want);
      for (const v of victims) {
        this.#api.delete(PODS, ns, v.metadata.name);
        this.#api.recordEvent(
          rs,
          "Normal",
          "SuccessfulDelete",
          `Deleted pod: ${v.metadata.name}`,
          "replicaset-controller",
        );
      }
      const gone = new Set(victims.map((v) => v.metadata.uid));
      owned.splice(0, owned.length, ...owned.filter((p) => !gone.has(p.metadata.uid)));
    }
    const tplLabels = rs.spec.template?.metadata?.labels ?? {};
    const status = {
      replicas: owned.length,
      fullyLabeledReplicas: owned.filter((p) =>
        Object.entries(tplLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
      ).length,
      readyReplicas: owned.filter(isReady).length,
      availableReplicas: owned.filter(isReady).length,
      observedGeneration: rs.metadata.generation ?? 1,
    };
    const current = this.#api.store.get("replicasets", ns, name);
    if (current && JSON.stringify(current.status) !== JSON.stringify(status)) {
      this.#api.update(RS, ns, name, { ...current, status }, { subresource: "status" });
    }
  }

  #ownerRef(rs: KObject) {
    return {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: rs.metadata.name,
      uid: rs.metadata.uid!,
      controller: true,
      blockOwnerDeletion: true,
    };
  }

  /** Garbage collection of a deleted ReplicaSet's pods. */
  afterDelete(rs: KObject, policy: DeleteOptions["propagationPolicy"]): void {
    const ns = rs.metadata.namespace!;
    for (const pod of this.#api.store.list("pods", ns)) {
      const refs = pod.metadata.ownerReferences ?? [];
      if (!refs.some((r) => r.uid === rs.metadata.uid)) continue;
      if (policy === "Orphan")
        this.#api.patch(PODS, ns, pod.metadata.name, "application/merge-patch+json", {
          metadata: { ownerReferences: rest(refs, rs.metadata.uid!) },
        });
      else if (!pod.metadata.deletionTimestamp) this.#api.delete(PODS, ns, pod.metadata.name);
    }
  }

  close(): void {
    this.#unlisten();
    if (this.#timer) clearImmediate(this.#timer);
  }
}
