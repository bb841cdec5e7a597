/**
 * A warm pool as a ReplicaSet: the ReplicaSet controller keeps `size` pods of the shape
 * running (and refills the pool when no Kiln process runs at all). A claim relabels one Ready
 * member with its current resourceVersion as a precondition: of two claimers of one pod, the
 * API server lets exactly one write succeed and answers the other 409 Conflict, which then
 * tries the next member. The new labels no longer match the ReplicaSet's selector, so the pod
 * leaves the set (we also drop its ownerReference so deleting the ReplicaSet never takes it
 * along) and the controller starts a replacement.
 * https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#isolating-pods-from-a-replicaset
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions (optimistic concurrency)
 */
import { randomBytes } from "node:crypto";
import { ConflictError, EngineError } from "@kiln/core";
import { type ContainerSpec, type EngineWarmPool, LABEL } from "@kiln/core/engine";
import type { V1Pod } from "@kubernetes/client-node";
import type { KubernetesEngine } from "./engine.ts";
import { kilnLabels, MERGE_PATCH, newLabelsPatch, statusCode } from "./engine.ts";
import { ANNOTATION, CONTAINER, K8S_LABEL, podLabels, poolReplicaSet } from "./manifests.ts";

const POLL_MS = 250;

export function podReady(pod: V1Pod): boolean {
  return (
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === "Running" &&
    (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

export class KubePool implements EngineWarmPool {
  readonly #engine: KubernetesEngine;
  readonly #spec: ContainerSpec;
  readonly #shape: string;
  readonly #size: number;
  readonly #name: string;
  #ready: V1Pod[] = [];
  #error: unknown;
  #timer?: NodeJS.Timeout;
  #closed = false;
  #started?: Promise<void>;
  readonly #waiters = new Set<() => void>();

  constructor(engine: KubernetesEngine, spec: ContainerSpec, shape: string, size: number) {
    this.#engine = engine;
    this.#shape = shape;
    this.#size = size;
    this.#name = `kiln-pool-${shape}`;
    // Owned by the ReplicaSet, not a process: core's sweeper leaves another host's owner alone.
    this.#spec = { ...spec, labels: { ...spec.labels, [LABEL.owner]: `replicaset/${this.#name}` } };
  }

  get ready(): number {
    return this.#ready.length;
  }

  get selector(): string {
    return `${K8S_LABEL.kind}=pool,${K8S_LABEL.shape}=${this.#shape}`;
  }

  start(): void {
    this.#started = this.#ensure().catch((err) => {
      this.#error = err;
      this.#wake();
    });
    this.#schedule(0);
  }

  /** Creates the ReplicaSet, or sets its replicas when another Kiln made it already. */
  async #ensure(): Promise<void> {
    const engine = this.#engine;
    await engine.ensurePolicies();
    const body = poolReplicaSet(this.#shape, this.#size, this.#spec, engine.podOptions(this.#spec.runtime));
    try {
      await engine.apps.createNamespacedReplicaSet({ namespace: engine.namespace, body });
    } catch (err) {
      if (statusCode(err) !== 409) engine.fail(err, "create replicaset");
      try {
        await engine.apps.patchNamespacedReplicaSet(
          { name: this.#name, namespace: engine.namespace, body: { spec: { replicas: this.#size } } },
          MERGE_PATCH,
        );
      } catch (e) {
        engine.fail(e, "scale replicaset");
      }
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#refresh()
        .catch((err) => {
          this.#error = err;
        })
        .finally(() => {
          this.#wake();
          this.#schedule(POLL_MS);
        });
    }, ms);
    this.#timer.unref();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** One list of the members: the ready ones, and a failure that no retry will fix. */
  async #refresh(): Promise<void> {
    const pods = await this.#engine.listPods(this.selector);
    this.#ready = pods.filter(podReady);
    for (const pod of pods) {
      const waiting = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state?.waiting;
      if (
        waiting?.reason &&
        /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError/.test(waiting.reason)
      ) {
        this.#error = new EngineError(`warm pool ${this.#name}: ${waiting.reason}: ${waiting.message ?? ""}`);
        return;
      }
    }
    this.#error = undefined;
  }

  async filled(): Promise<void> {
    await this.#started;
    const deadline = Date.now() + (this.#engine.options.startTimeoutMs ?? 120_000);
    while (!this.#closed) {
      if (this.#ready.length >= this.#size) return;
      if (this.#error) throw this.#error;
      if (Date.now() > deadline) throw new EngineError(`warm pool ${this.#name} did not fill within the start timeout`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  async claim(name: string, labels: Record<string, string>): Promise<string | undefined> {
    const engine = this.#engine;
    const named = name.startsWith("kiln.");
    if (named && (await engine.podsNamed(name)).length > 0)
      throw new ConflictError(`The name "${name}" is already taken`);
    // A fresh list: the members another Kiln claimed since the last poll are gone from it.
    const candidates = (await engine.listPods(this.selector)).filter(podReady);
    // Claimers in other processes start at different members, so they rarely collide.
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j] as V1Pod, candidates[i] as V1Pod];
    }
    for (const pod of candidates) {
      const id = randomBytes(16).toString("hex");
      const podName = pod.metadata?.name as string;
      const next = podLabels(labels, { id, name, network: this.#spec.network }, engine.options.extraLabels);
      try {
        await engine.core.patchNamespacedPod(
          {
            name: podName,
            namespace: engine.namespace,
            body: {
              metadata: {
                resourceVersion: pod.metadata?.resourceVersion,
                ownerReferences: null,
                labels: newLabelsPatch(pod.metadata?.labels, next),
                annotations: { [ANNOTATION.labels]: JSON.stringify(labels), [ANNOTATION.containerName]: name },
              },
            },
          },
          MERGE_PATCH,
        );
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || code === 404) continue; // another claimer won it, or it is gone: the next one
        engine.fail(err, "claim pool member");
      }
      this.#ready = this.#ready.filter((p) => p.metadata?.name !== podName);
      if (named && !(await engine.settleName(podName, name))) {
        await engine.deletePod(podName);
        throw new ConflictError(`The name "${name}" is already taken`);
      }
      return id;
    }
    return undefined;
  }

  stopWatching(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wake();
  }

  /** Stops watching and, unless kubernetes({ keepPools: true }), deletes the ReplicaSet and its unclaimed members. */
  async close(): Promise<void> {
    this.stopWatching();
    await this.#started;
    if (this.#engine.options.keepPools) return;
    try {
      await this.#engine.apps.deleteNamespacedReplicaSet({
        name: this.#name,
        namespace: this.#engine.namespace,
        propagationPolicy: "Background",
      });
    } catch (err) {
      if (statusCode(err) !== 404) this.#engine.fail(err, "delete replicaset");
    }
    // Background propagation deletes the members later; delete them now so nothing lingers.
    for (const pod of await this.#engine.listPods(this.selector).catch(() => [])) {
      if (kilnLabels(pod)[LABEL.kind] === "pool")
        await this.#engine.deletePod(pod.metadata?.name as string).catch(() => {});
    }
  }
}
