/**
 * What outlives a Pod: Kiln's volumes, and a stopped sandbox's /workspace, as
 * PersistentVolumeClaims (https://kubernetes.io/docs/concepts/storage/persistent-volumes/).
 *
 * Volumes (`kiln.volumes.create/list/delete`, `create({ volumes })`): one PVC per volume, named
 * `kiln-vol-<slug>-<hash>` (a Kiln volume name may hold upper case and `_`, a PVC name may not),
 * with the Kiln name in annotation `kiln.volume-name`. Pods mount it as a `persistentVolumeClaim`
 * volume; the pod's `fsGroup` makes it writable for the sandbox user (the kubelet's ownership
 * change). Deleting a volume a sandbox mounts (running or stopped) is refused, as on Docker.
 *
 * Restart after stop: a Pod never runs again once it ended, so
 * - `stop()` copies /workspace into the sandbox's workspace PVC `kiln-ws-<id>` (made on the first
 *   stop; a short-lived "stash" pod mounts it and receives the files as a tar stream over exec),
 *   records the claim on the pod (annotation `kiln.workspace-claim`), then ends the pod as before;
 *   the finished Pod stays in the API as the sandbox's record (identity, labels, annotations);
 * - `start()` of a stopped sandbox creates a new pod `kiln-<id>-<suffix>` from the finished one
 *   (same labels and annotations, so the same id, name and network mode), with the workspace PVC
 *   mounted at /workspace, then deletes the finished pod. Later stops need no copy: /workspace is
 *   the PVC. Two concurrent starts are settled on the finished pod's resourceVersion: one writes
 *   `kiln.restarted-as`, the other waits for that pod.
 * What a restart keeps is /workspace only: other paths (/home/kiln, installed packages, /tmp)
 * start again from the image, and a pod ended by the kubelet (maxLifetimeSeconds, eviction, a node
 * lost) had no stop to copy its files: it restarts with the /workspace of its last Kiln stop, or
 * an empty one.
 */
import { randomBytes } from "node:crypto";
import { ConflictError, EngineError, SandboxNotFoundError, VolumeNotFoundError } from "@kiln/core";
import type { VolumeSummary } from "@kiln/core/engine";
import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { claimName, volumeClaim, workspaceClaimManifest } from "./claims.ts";
import type { KubernetesEngine } from "./engine.ts";
import { kilnLabels, MERGE_PATCH, podId, podStatus, statusCode } from "./engine.ts";
import { runExec } from "./exec.ts";
import { ANNOTATION, CONTAINER, K8S_LABEL, validLabel } from "./manifests.ts";
import { waitForPod } from "./watch.ts";

export { claimName };

export const VOLUME_ANNOTATION = {
  deleting: "kiln.deleting",
  name: "kiln.volume-name",
  workspaceClaim: "kiln.workspace-claim",
  restartedAs: "kiln.restarted-as",
} as const;
/** Label of a sandbox's workspace PVC and its stash pods: the sandbox id. */
export const WORKSPACE_LABEL = "kiln.workspace";
const WORKSPACE = "/workspace";

/** The workspace PVC of a sandbox. */
export const workspaceClaim = (id: string) => `kiln-ws-${id}`;

/** The PVCs a pod mounts. */
export function claimsOf(pod: V1Pod): string[] {
  return (pod.spec?.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
}

function summary(pvc: V1PersistentVolumeClaim): VolumeSummary {
  let labels: Record<string, string> = {};
  try {
    labels = JSON.parse(pvc.metadata?.annotations?.[ANNOTATION.labels] ?? "{}") as Record<string, string>;
  } catch {
    labels = {};
  }
  const created = pvc.metadata?.creationTimestamp;
  return {
    name: pvc.metadata?.annotations?.[VOLUME_ANNOTATION.name] ?? (pvc.metadata?.name as string),
    labels,
    createdAt: (created instanceof Date ? created : new Date(created ?? 0)).toISOString(),
  };
}

export class Persistence {
  readonly #e: KubernetesEngine;

  constructor(engine: KubernetesEngine) {
    this.#e = engine;
  }

  async #readClaim(name: string): Promise<V1PersistentVolumeClaim | undefined> {
    const e = this.#e;
    try {
      return await e.core.readNamespacedPersistentVolumeClaim({ name, namespace: e.namespace });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      return e.fail(err, "read persistentvolumeclaim");
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<VolumeSummary> {
    const e = this.#e;
    const v = e.options.volumes ?? {};
    const k8sLabels: Record<string, string> = { [K8S_LABEL.kind]: "volume" };
    for (const [k, val] of Object.entries(labels)) if (validLabel(k, val)) k8sLabels[k] = val;
    try {
      const pvc = await e.core.createNamespacedPersistentVolumeClaim({
        namespace: e.namespace,
        body: volumeClaim(
          name,
          k8sLabels,
          { [VOLUME_ANNOTATION.name]: name, [ANNOTATION.labels]: JSON.stringify(labels) },
          { ...v, ...(e.options.extraLabels ? { extraLabels: e.options.extraLabels } : {}) },
        ),
      });
      return summary(pvc);
    } catch (err) {
      if (statusCode(err) === 409)
        throw new ConflictError(`A volume named "${name}" already exists (or is still being deleted)`, { cause: err });
      return e.fail(err, "create persistentvolumeclaim");
    }
  }

  async listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]> {
    const e = this.#e;
    const selector = [`${K8S_LABEL.kind}=volume`];
    for (const [k, v] of Object.entries(labels)) {
      if (v === "" && validLabel(k, "x")) selector.push(k);
      else if (validLabel(k, v)) selector.push(`${k}=${v}`);
    }
    try {
      const list = await e.core.listNamespacedPersistentVolumeClaim({
        namespace: e.namespace,
        labelSelector: selector.join(","),
      });
      return list.items
        .filter((p) => !p.metadata?.deletionTimestamp)
        .map(summary)
        .filter((s) => Object.entries(labels).every(([k, v]) => (v === "" ? k in s.labels : s.labels[k] === v)));
    } catch (err) {
      return e.fail(err, "list persistentvolumeclaims");
    }
  }

  /** undefined when missing or being deleted (its name is not free yet, but it is no volume any more). */
  async inspectVolume(name: string): Promise<VolumeSummary | undefined> {
    const pvc = await this.#readClaim(claimName(name));
    if (!pvc || pvc.metadata?.deletionTimestamp) return undefined;
    if (pvc.metadata?.annotations?.[VOLUME_ANNOTATION.name] !== name) return undefined;
    return summary(pvc);
  }

  /** Kiln pods (running or stopped) that mount `claim`. */
  async #users(claim: string): Promise<V1Pod[]> {
    return (await this.#e.listPods(K8S_LABEL.kind)).filter((p) => claimsOf(p).includes(claim));
  }

  /**
   * Refused while a sandbox (running or stopped) mounts it. A PVC deletion cannot be taken back,
   * so a create racing it is settled by an intent both sides read after their own write: the
   * delete first marks the claim (annotation kiln.deleting, under its resourceVersion), then
   * lists the pods that mount it, and deletes only if there are none (else it removes the mark
   * and is refused); a create makes its pod, then reads the claim, and fails (deleting its pod)
   * when the claim is marked or terminating. Whichever way they interleave, never both succeed.
   */
  async removeVolume(name: string): Promise<void> {
    const e = this.#e;
    const claim = claimName(name);
    const missing = () => new VolumeNotFoundError(name.replace(/^kiln-vol-/, ""));
    const inUse = (users: V1Pod[]) =>
      new ConflictError(
        `The volume is in use by sandbox ${podId(users[0] as V1Pod)}${users.length > 1 ? ` and ${users.length - 1} more` : ""}: delete them first`,
      );
    const before = await this.#users(claim);
    if (before.length > 0) throw inUse(before);
    const pvc = await this.#readClaim(claim);
    if (!pvc || pvc.metadata?.deletionTimestamp) throw missing();
    let marked: V1PersistentVolumeClaim;
    try {
      marked = await e.core.patchNamespacedPersistentVolumeClaim(
        {
          name: claim,
          namespace: e.namespace,
          body: {
            metadata: {
              resourceVersion: pvc.metadata?.resourceVersion,
              annotations: { [VOLUME_ANNOTATION.deleting]: new Date().toISOString() },
            },
          },
        },
        MERGE_PATCH,
      );
    } catch (err) {
      if (statusCode(err) === 404) throw missing();
      if (statusCode(err) === 409)
        throw new ConflictError(`The volume changed while it was being deleted: try again`, { cause: err });
      return e.fail(err, "delete persistentvolumeclaim");
    }
    const users = await this.#users(claim);
    if (users.length > 0) {
      await e.core
        .patchNamespacedPersistentVolumeClaim(
          {
            name: claim,
            namespace: e.namespace,
            body: { metadata: { annotations: { [VOLUME_ANNOTATION.deleting]: null } } },
          },
          MERGE_PATCH,
        )
        .catch(() => {});
      throw inUse(users);
    }
    try {
      await e.core.deleteNamespacedPersistentVolumeClaim({
        name: claim,
        namespace: e.namespace,
        body: { preconditions: { resourceVersion: marked.metadata?.resourceVersion } },
      });
    } catch (err) {
      if (statusCode(err) === 404) throw missing();
      e.fail(err, "delete persistentvolumeclaim");
    }
  }

  /**
   * After a pod naming claims was created: each must exist, be neither terminating nor marked for
   * deletion (removeVolume), or the pod fails: it is deleted, and VolumeNotFoundError thrown.
   */
  async checkClaims(pod: V1Pod): Promise<void> {
    for (const claim of claimsOf(pod)) {
      if (claim.startsWith("kiln-ws-")) continue;
      const pvc = await this.#readClaim(claim);
      const mark = Date.parse(pvc?.metadata?.annotations?.[VOLUME_ANNOTATION.deleting] ?? "");
      // A mark older than a minute is a delete that crashed half-way: ignored.
      const deleting = !Number.isNaN(mark) && Date.now() - mark < 60_000;
      if (!pvc || pvc.metadata?.deletionTimestamp || deleting) {
        await this.#e.deletePod(pod.metadata?.name as string).catch(() => false);
        const name = pvc?.metadata?.annotations?.[VOLUME_ANNOTATION.name]?.replace(/^kiln-vol-/, "") ?? claim;
        throw new VolumeNotFoundError(name);
      }
    }
  }

  /**
   * Copies the running sandbox's /workspace into its workspace PVC (made now if needed) through a
   * short-lived stash pod, and records the claim on the sandbox pod. Nothing to do when
   * /workspace already is that PVC (a sandbox started again after a stop).
   */
  async stash(pod: V1Pod): Promise<void> {
    const e = this.#e;
    const id = podId(pod);
    const podName = pod.metadata?.name as string;
    if (claimsOf(pod).includes(workspaceClaim(id))) return;
    const claim = workspaceClaim(id);
    const v = e.options.volumes ?? {};
    const disk = Number(
      /^(\d+)Mi$/.exec(String(pod.spec?.containers[0]?.resources?.limits?.["ephemeral-storage"] ?? ""))?.[1] ?? 4096,
    );
    try {
      await e.core.createNamespacedPersistentVolumeClaim({
        namespace: e.namespace,
        body: workspaceClaimManifest(id, disk, {
          ...v,
          ...(e.options.extraLabels ? { extraLabels: e.options.extraLabels } : {}),
        }),
      });
    } catch (err) {
      if (statusCode(err) !== 409) e.fail(err, "create workspace claim");
    }
    const sandbox = pod.spec?.containers.find((c) => c.name === CONTAINER);
    const stashName = `kiln-ws-${id}-${randomBytes(3).toString("hex")}`;
    const body: V1Pod = {
      metadata: {
        name: stashName,
        labels: { ...e.options.extraLabels, [K8S_LABEL.kind]: "stash", [WORKSPACE_LABEL]: id },
      },
      spec: {
        restartPolicy: "Never",
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 0,
        activeDeadlineSeconds: 600,
        ...(pod.spec?.runtimeClassName ? { runtimeClassName: pod.spec.runtimeClassName } : {}),
        securityContext: pod.spec?.securityContext ?? {},
        containers: [
          {
            name: CONTAINER,
            image: sandbox?.image as string,
            ...(sandbox?.imagePullPolicy ? { imagePullPolicy: sandbox.imagePullPolicy } : {}),
            command: ["sleep", "600"],
            ...(sandbox?.securityContext ? { securityContext: sandbox.securityContext } : {}),
            resources: { limits: { cpu: "500m", memory: "256Mi" } },
            volumeMounts: [{ name: "workspace", mountPath: WORKSPACE }],
          },
        ],
        volumes: [{ name: "workspace", persistentVolumeClaim: { claimName: claim } }],
      },
    };
    try {
      await e.core.createNamespacedPod({ namespace: e.namespace, body });
    } catch (err) {
      e.fail(err, "create stash pod");
    }
    try {
      const ready = await waitForPod(
        e,
        stashName,
        (p) => p === undefined || p.status?.phase !== "Pending",
        e.options.startTimeoutMs ?? 120_000,
      );
      if (ready?.status?.phase !== "Running")
        throw new EngineError(
          `stop: the pod that keeps ${id}'s /workspace did not start (${ready?.status?.phase ?? "gone"})`,
        );
      // The entries of /workspace, not "." itself: the claim's root is root's (group fsGroup), and
      // the sandbox user may not change its mode.
      const files = await runExec(e.target(podName), [
        "/bin/sh",
        "-c",
        'cd "$1" && find . -mindepth 1 -maxdepth 1 -print0 | tar -c --null -T -',
        "sh",
        WORKSPACE,
      ]);
      if (files.exitCode !== 0) throw new EngineError(`stop: reading /workspace failed: ${files.stderr.trim()}`);
      const put = await runExec(
        e.target(stashName),
        [
          "/bin/sh",
          "-c",
          // --no-overwrite-dir: the claim's root belongs to root (group fsGroup); leave its mode be.
          'head -c "$1" | tar -x -m --no-same-owner --no-overwrite-dir -C "$2"',
          "sh",
          String(files.stdout.length),
          WORKSPACE,
        ],
        files.stdout,
      );
      if (put.exitCode !== 0) throw new EngineError(`stop: writing the workspace claim failed: ${put.stderr.trim()}`);
    } finally {
      await e.deletePod(stashName).catch(() => false);
    }
    await e.patchPod(podName, { metadata: { annotations: { [VOLUME_ANNOTATION.workspaceClaim]: claim } } });
  }

  /**
   * Starts a stopped sandbox again: a new pod from the finished one (same labels and
   * annotations), its /workspace the workspace PVC; then the finished pod goes. Returns the new
   * pod's name.
   */
  async restart(old: V1Pod): Promise<string> {
    const e = this.#e;
    const id = podId(old);
    const oldName = old.metadata?.name as string;
    const pending = old.metadata?.annotations?.[VOLUME_ANNOTATION.restartedAs];
    if (pending) {
      // Another start is under way: use its pod once it exists. One that never appears was a
      // start that crashed half-way: this one takes over.
      if (await waitForPod(e, pending, (p) => p !== undefined, 10_000)) return pending;
    }
    const newName = `kiln-${id}-${randomBytes(3).toString("hex")}`;
    // Of two concurrent starts exactly one writes this (resourceVersion precondition); the other
    // gets 409 and waits for the winner's pod.
    try {
      await e.core.patchNamespacedPod(
        {
          name: oldName,
          namespace: e.namespace,
          body: {
            metadata: {
              resourceVersion: old.metadata?.resourceVersion,
              annotations: { [VOLUME_ANNOTATION.restartedAs]: newName },
            },
          },
        },
        MERGE_PATCH,
      );
    } catch (err) {
      if (statusCode(err) === 404) throw new SandboxNotFoundError(id);
      if (statusCode(err) !== 409) e.fail(err, "start");
      const now = await e.readPod(oldName);
      const winner = now?.metadata?.annotations?.[VOLUME_ANNOTATION.restartedAs];
      // The winner creates its pod right after its write: wait for it to exist.
      if (winner && (await waitForPod(e, winner, (p) => p !== undefined, 30_000))) return winner;
      if (!now) {
        // The winner's pod replaced the finished one already.
        const current = await e.resolve(id);
        if (current) return current.metadata?.name as string;
      }
      throw new ConflictError(`${id} is being started by another caller`, { cause: err });
    }
    const claim = old.metadata?.annotations?.[VOLUME_ANNOTATION.workspaceClaim];
    const spec = structuredClone(old.spec) as NonNullable<V1Pod["spec"]>;
    delete spec.nodeName;
    // Set by admission from the priority class; a pod that sends them back is refused.
    delete spec.priority;
    delete spec.preemptionPolicy;
    spec.restartPolicy = "Never";
    const lifetime = e.options.maxLifetimeSeconds;
    if (lifetime === undefined) delete spec.activeDeadlineSeconds;
    else spec.activeDeadlineSeconds = lifetime;
    if (claim && !claimsOf(old).includes(claim)) {
      spec.volumes = [...(spec.volumes ?? []), { name: "kiln-workspace", persistentVolumeClaim: { claimName: claim } }];
      for (const c of spec.containers)
        if (c.name === CONTAINER)
          c.volumeMounts = [...(c.volumeMounts ?? []), { name: "kiln-workspace", mountPath: WORKSPACE }];
    }
    const annotations = { ...(old.metadata?.annotations ?? {}) };
    delete annotations[ANNOTATION.lastActivity];
    delete annotations[VOLUME_ANNOTATION.restartedAs];
    const labels = { ...(old.metadata?.labels ?? {}) };
    // A claimed pool member keeps nothing of its pool.
    delete labels["pod-template-hash"];
    try {
      await e.core.createNamespacedPod({
        namespace: e.namespace,
        body: { apiVersion: "v1", kind: "Pod", metadata: { name: newName, labels, annotations }, spec },
      });
    } catch (err) {
      e.fail(err, "create pod");
    }
    // The finished pod is gone already only if a delete of the sandbox ran meanwhile: that delete
    // may have listed the id's pods before this one existed, so this start undoes itself.
    if (!(await e.deletePod(oldName).catch(() => true))) {
      await e.deletePod(newName).catch(() => false);
      throw new SandboxNotFoundError(id);
    }
    e.remember(id, newName);
    return newName;
  }

  /** Everything of a deleted sandbox's: its workspace claim and stash pods. */
  async removeWorkspace(id: string): Promise<void> {
    const e = this.#e;
    await e.core
      .deleteNamespacedPersistentVolumeClaim({ name: workspaceClaim(id), namespace: e.namespace })
      .catch((err: unknown) => {
        if (statusCode(err) !== 404) throw err;
      });
  }

  /** The sweeper's part: workspace claims whose sandbox is gone. */
  async sweepWorkspaces(): Promise<void> {
    const e = this.#e;
    const claims = await e.core
      .listNamespacedPersistentVolumeClaim({ namespace: e.namespace, labelSelector: WORKSPACE_LABEL })
      .catch(() => ({ items: [] as V1PersistentVolumeClaim[] }));
    if (claims.items.length === 0) return;
    const live = new Set((await e.listPods(K8S_LABEL.id)).map(podId));
    for (const pvc of claims.items) {
      const id = pvc.metadata?.labels?.[WORKSPACE_LABEL] as string;
      const age = Date.now() - new Date(pvc.metadata?.creationTimestamp ?? 0).getTime();
      // A stop in progress made it a moment ago, before the pod records it: leave young ones.
      if (!live.has(id) && age > 60_000) await this.removeWorkspace(id).catch(() => {});
    }
  }
}

export { kilnLabels, podStatus };
