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
import { MERGE_PATCH, newLabelsPatch, statusCode } from "./engine.ts";
import { ANNOTATION, CONTAINER, K8S_LABEL, podLabels, poolReplicaSet } from "./manifests.ts";
import { PodInformer } from "./watch.ts";

/** Annotation on a pool's ReplicaSet: the Kiln pools holding it, { key: { owner, size } }. */
export const HOLDERS = "kiln.pool-holders";
export type Holders = Record<string, { owner: string; size: number }>;
export const POOLED_LABEL = "kiln.pooled";

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
  /** The members, kept current by a watch (no polling): claims pick from it, filled() waits on it. */
  readonly #informer: PodInformer;
  #closed = false;
  #closing?: Promise<void>;
  /** Members this process is claiming or has claimed, until the watch shows them gone from the pool. */
  readonly #taken = new Set<string>();
  #started?: Promise<void>;
  /** The ReplicaSet exists (made or scaled by this pool); until then each poll tries again. */
  #ensured = false;
  readonly #waiters = new Set<() => void>();
  /** This pool's entry in the ReplicaSet's holders, and the process that holds it. */
  readonly #key = randomBytes(6).toString("hex");
  readonly #owner: string;

  constructor(engine: KubernetesEngine, spec: ContainerSpec, shape: string, size: number) {
    this.#engine = engine;
    this.#shape = shape;
    this.#size = size;
    this.#name = `kiln-pool-${shape}`;
    this.#owner = spec.labels[LABEL.owner] ?? "";
    // Owned by the ReplicaSet, not a process: core's sweeper leaves another host's owner alone.
    this.#spec = { ...spec, labels: { ...spec.labels, [LABEL.owner]: `replicaset/${this.#name}` } };
    this.#informer = new PodInformer(engine, this.selector);
    this.#informer.onChange(() => {
      this.#refresh();
      this.#wake();
    });
  }

  /** This pool's ready members: the shared ReplicaSet's, up to this pool's size. */
  get ready(): number {
    return Math.min(this.#ready.length, this.#size);
  }

  get selector(): string {
    return `${K8S_LABEL.kind}=pool,${K8S_LABEL.shape}=${this.#shape}`;
  }

  start(): void {
    this.#started = this.#ensure().then(
      () => {
        this.#ensured = true;
      },
      (err) => {
        this.#error = err;
        this.#wake();
      },
    );
    this.#informer.start();
  }

  /**
   * Creates the ReplicaSet with this pool as its one holder, or joins the one another Kiln made
   * for the same shape: holders are listed in its annotation kiln.pool-holders ({ key: { owner,
   * size } }) and replicas is the sum of their sizes, as separate Docker pools would add up.
   */
  async #ensure(): Promise<void> {
    const engine = this.#engine;
    await engine.ensurePolicies();
    const body = poolReplicaSet(this.#shape, this.#size, this.#spec, engine.podOptions(this.#spec.runtime));
    body.metadata = {
      ...body.metadata,
      annotations: { [HOLDERS]: JSON.stringify({ [this.#key]: { owner: this.#owner, size: this.#size } }) },
    };
    try {
      await engine.apps.createNamespacedReplicaSet({ namespace: engine.namespace, body });
    } catch (err) {
      if (statusCode(err) !== 409) engine.fail(err, "create replicaset");
      await updateHolders(engine, this.#name, (h) => {
        h[this.#key] = { owner: this.#owner, size: this.#size };
      });
    }
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** From the watched members: the ready ones, and a failure that no retry will fix. */
  #refresh(): void {
    const pods = this.#informer.pods();
    // A member taken here stays skipped until the watch no longer lists it as a member.
    const members = new Set(pods.map((p) => p.metadata?.name as string));
    for (const name of this.#taken) if (!members.has(name)) this.#taken.delete(name);
    this.#ready = pods.filter((p) => podReady(p) && !this.#taken.has(p.metadata?.name as string));
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
    this.#error = this.#ensured ? this.#informer.error : this.#error;
  }

  async filled(): Promise<void> {
    await this.#started;
    if (!this.#ensured) {
      // The ReplicaSet could not be made at start (e.g. the API server was briefly away): again.
      await this.#ensure();
      this.#ensured = true;
      this.#refresh();
    }
    const deadline = Date.now() + (this.#engine.options.startTimeoutMs ?? 120_000);
    while (!this.#closed) {
      if (this.ready >= this.#size) return;
      if (this.#error) throw this.#error;
      if (Date.now() > deadline) throw new EngineError(`warm pool ${this.#name} did not fill within the start timeout`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        // Wakes at the deadline too, when no change comes.
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()) + 10);
        timer.unref();
        this.#waiters.add(wake);
      });
    }
  }

  async claim(name: string, labels: Record<string, string>): Promise<string | undefined> {
    const engine = this.#engine;
    const named = name.startsWith("kiln.");
    if (named && (await engine.podsNamed(name)).length > 0)
      throw new ConflictError(`The name "${name}" is already taken`);
    // The watched members (a LIST until the watch has synced). One another Kiln claimed a moment
    // ago may still look free: its PATCH then fails on the resourceVersion, and the next is tried.
    // Not the members this process is taking or took (the watch may not have shown that yet).
    const candidates = (this.#informer.synced ? this.#informer.pods() : await engine.listPods(this.selector)).filter(
      (p) => podReady(p) && !this.#taken.has(p.metadata?.name as string),
    );
    // Claimers in other processes start at different members, so they rarely collide.
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j] as V1Pod, candidates[i] as V1Pod];
    }
    for (const listed of candidates) {
      let pod: V1Pod | undefined = listed;
      const id = randomBytes(16).toString("hex");
      const podName = listed.metadata?.name as string;
      if (this.#taken.has(podName)) continue;
      this.#taken.add(podName);
      // A 409 also comes from the kubelet's own status writes to an unclaimed member: re-read it
      // once, and try again while it is still an unclaimed Ready member.
      let won = false;
      for (let attempt = 0; attempt < 2 && pod && !won; attempt++) {
        won = await this.#take(pod, id, name, labels);
        if (!won) {
          const now = await engine.readPod(podName);
          pod = now && now.metadata?.labels?.[K8S_LABEL.kind] === "pool" && podReady(now) ? now : undefined;
        }
      }
      if (!won) {
        this.#taken.delete(podName);
        continue;
      }
      this.#ready = this.#ready.filter((p) => p.metadata?.name !== podName);
      engine.remember(id, podName);
      if (named && !(await engine.settleName(podName, name))) {
        await engine.deletePod(podName);
        throw new ConflictError(`The name "${name}" is already taken`);
      }
      return id;
    }
    return undefined;
  }

  /** One relabel of `pod` with its resourceVersion as precondition: false on 409 or 404. */
  async #take(pod: V1Pod, id: string, name: string, labels: Record<string, string>): Promise<boolean> {
    const engine = this.#engine;
    // kiln.pooled: which pool it came from (what Docker's kiln.kind=pool tells about a claimed member).
    const claimed = { ...labels, [POOLED_LABEL]: this.#shape };
    const next = podLabels(claimed, { id, name, network: this.#spec.network }, engine.options.extraLabels);
    try {
      await engine.core.patchNamespacedPod(
        {
          name: pod.metadata?.name as string,
          namespace: engine.namespace,
          body: {
            metadata: {
              resourceVersion: pod.metadata?.resourceVersion,
              ownerReferences: null,
              labels: newLabelsPatch(pod.metadata?.labels, next),
              annotations: { [ANNOTATION.labels]: JSON.stringify(claimed), [ANNOTATION.containerName]: name },
            },
          },
        },
        MERGE_PATCH,
      );
      return true;
    } catch (err) {
      const code = statusCode(err);
      if (code === 409 || code === 404) return false; // another writer came first, or it is gone
      return engine.fail(err, "claim pool member");
    }
  }

  stopWatching(): void {
    this.#closed = true;
    this.#informer.stop();
    this.#wake();
  }

  /**
   * Stops watching and leaves the ReplicaSet: its replicas drop by this pool's size, and the
   * last holder to leave deletes it with its unclaimed members (unless kubernetes({ keepPools:
   * true }), which leaves it to refill with no Kiln running). Returns once the members beyond
   * the new size are gone.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#wake();
    this.#closing ??= this.#leave().finally(() => this.#informer.stop());
    return this.#closing;
  }

  async #leave(): Promise<void> {
    await this.#started;
    if (this.#engine.options.keepPools) return;
    const engine = this.#engine;
    const remaining = await updateHolders(engine, this.#name, (h) => {
      delete h[this.#key];
    }).catch((err) => {
      if (statusCode(err) === 404) return 0;
      throw err;
    });
    if (remaining === 0) {
      try {
        await engine.apps.deleteNamespacedReplicaSet({
          name: this.#name,
          namespace: engine.namespace,
          propagationPolicy: "Background",
        });
      } catch (err) {
        if (statusCode(err) !== 404) engine.fail(err, "delete replicaset");
      }
      // Background propagation deletes the members later; delete them now so nothing lingers.
      for (const pod of await engine.listPods(this.selector).catch(() => [])) {
        await engine.deletePod(pod.metadata?.name as string).catch(() => {});
      }
      return;
    }
    // Settled: exactly the remaining holders' members, all ready (the ReplicaSet may have
    // removed a ready member and kept one still starting, or not yet replaced a claimed one).
    const settled = () => {
      const pods = this.#informer.pods();
      return this.#informer.synced && pods.length === remaining && pods.every(podReady);
    };
    if (settled()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 60_000);
      const off = this.#informer.onChange(() => {
        if (settled()) done();
      });
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }
}

/**
 * Changes a pool ReplicaSet's holders (and so its replicas) with its resourceVersion as the
 * precondition, retrying on 409 Conflict; returns the new replicas.
 */
export async function updateHolders(
  engine: KubernetesEngine,
  name: string,
  change: (holders: Holders) => void,
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const rs = await engine.apps.readNamespacedReplicaSet({ name, namespace: engine.namespace });
    let holders: Holders = {};
    try {
      holders = JSON.parse(rs.metadata?.annotations?.[HOLDERS] ?? "{}") as Holders;
    } catch {
      holders = {};
    }
    change(holders);
    const replicas = Object.values(holders).reduce((sum, h) => sum + h.size, 0);
    try {
      await engine.apps.patchNamespacedReplicaSet(
        {
          name,
          namespace: engine.namespace,
          body: {
            metadata: {
              resourceVersion: rs.metadata?.resourceVersion,
              annotations: { [HOLDERS]: JSON.stringify(holders) },
            },
            spec: { replicas },
          },
        },
        MERGE_PATCH,
      );
      return replicas;
    } catch (err) {
      if (statusCode(err) !== 409 || attempt >= 20) throw err;
    }
  }
}
