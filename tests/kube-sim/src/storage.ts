/**
 * PersistentVolumeClaims, each backed by one Docker volume. What is simulated (each with the page
 * it follows):
 * - the object, its validation and defaults: https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/persistent-volume-claim-v1/
 *   (`accessModes` required, one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod;
 *   `resources.requests.storage` required; `volumeMode` defaults to Filesystem; the spec is
 *   immutable after creation but for a larger `resources.requests`);
 * - dynamic provisioning with the default StorageClass, binding at once (`volumeBindingMode:
 *   Immediate`): https://kubernetes.io/docs/concepts/storage/dynamic-provisioning/ and
 *   https://kubernetes.io/docs/concepts/storage/persistent-volumes/#binding (`status.phase:
 *   Bound`, `status.capacity`, `status.accessModes`; the one node makes every access mode
 *   satisfiable: ReadWriteOnce is per node, https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes);
 * - Storage Object in Use Protection: https://kubernetes.io/docs/concepts/storage/persistent-volumes/#storage-object-in-use-protection
 *   (finalizer `kubernetes.io/pvc-protection`; deleting a PVC a pod uses sets its
 *   `deletionTimestamp` and the PVC stays, `Terminating`, until no pod that is not terminated
 *   uses it; then it is removed);
 * - reclaim policy Delete of dynamically provisioned volumes: the Docker volume goes with the PVC
 *   (https://kubernetes.io/docs/concepts/storage/persistent-volumes/#delete);
 * - a pod naming a missing PVC, or one being deleted, is not scheduled: it stays `Pending` with
 *   `PodScheduled=False`, reason `Unschedulable` (the scheduler's VolumeBinding plugin:
 *   https://kubernetes.io/docs/concepts/scheduling-eviction/scheduling-framework/), and is
 *   scheduled once the claim is there;
 * - fsGroup ownership of mounted volumes: https://kubernetes.io/docs/tasks/configure-pod-container/security-context/#configure-volume-permission-and-ownership-change-policy-for-pods
 *   (the volume's files get the pod's fsGroup as their group, group-writable, directories setgid;
 *   applied as `fsGroupChangePolicy: OnRootMismatch`: once per volume and group);
 * - no copy of the image's files into the volume (Kubernetes mounts the claim as it is; Docker's
 *   copy-up of named volumes is turned off with `NoCopy`).
 * Not simulated: StorageClasses as objects, capacity enforcement, PersistentVolume objects,
 * volume expansion, snapshots, access-mode enforcement across nodes (there is one node).
 */
import type Docker from "dockerode";
import type { Api } from "./api.ts";
import { dnsSubdomainErrors, metadataCauses, parseQuantity } from "./resources.ts";
import { invalid, type StatusCause } from "./status.ts";
import { type Change, type KObject, now, type Store } from "./store.ts";

export const PVC_PROTECTION = "kubernetes.io/pvc-protection";
const ACCESS_MODES = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];

/** Defaults and validation of a new PVC. */
export function admitClaim(pvc: KObject): void {
  pvc.spec ??= {};
  const spec = pvc.spec;
  spec.volumeMode ??= "Filesystem";
  spec.storageClassName ??= "standard";
  const causes: StatusCause[] = [...metadataCauses(pvc, dnsSubdomainErrors)];
  if (!Array.isArray(spec.accessModes) || spec.accessModes.length === 0)
    causes.push({
      field: "spec.accessModes",
      reason: "FieldValueRequired",
      message: "Required value: at least 1 access mode is required",
    });
  for (const m of Array.isArray(spec.accessModes) ? spec.accessModes : [])
    if (!ACCESS_MODES.includes(m))
      causes.push({
        field: "spec.accessModes",
        reason: "FieldValueNotSupported",
        message: `Unsupported value: "${m}": supported values: ${ACCESS_MODES.map((a) => `"${a}"`).join(", ")}`,
      });
  const storage = spec.resources?.requests?.storage;
  if (storage === undefined)
    causes.push({ field: "spec.resources[storage]", reason: "FieldValueRequired", message: "Required value" });
  else if (!((parseQuantity(String(storage)) ?? 0) > 0))
    causes.push({
      field: "spec.resources[storage]",
      message: `Invalid value: "${storage}": must be greater than zero`,
    });
  if (!["Filesystem", "Block"].includes(spec.volumeMode))
    causes.push({
      field: "spec.volumeMode",
      reason: "FieldValueNotSupported",
      message: `Unsupported value: "${spec.volumeMode}"`,
    });
  if (causes.length) throw invalid("PersistentVolumeClaim", pvc.metadata.name ?? "", causes);
  // The PVC protection admission plugin adds the finalizer to every new claim.
  pvc.metadata.finalizers = [...new Set([...(pvc.metadata.finalizers ?? []), PVC_PROTECTION])];
  pvc.status = { phase: "Pending" };
}

/** The spec of a claim is immutable but for a larger storage request. */
export function validateClaimUpdate(next: KObject, old: KObject): void {
  const strip = (s: KObject["spec"]) => JSON.stringify({ ...s, resources: undefined });
  const causes: StatusCause[] = [...metadataCauses(next, dnsSubdomainErrors)];
  if (strip(next.spec ?? {}) !== strip(old.spec))
    causes.push({
      field: "spec",
      reason: "FieldValueForbidden",
      message:
        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
    });
  if (causes.length) throw invalid("PersistentVolumeClaim", next.metadata.name, causes);
}

const terminal = (pod: KObject) => pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

function claimsOf(pod: KObject): string[] {
  return (pod.spec?.volumes ?? [])
    .map((v: KObject) => v.persistentVolumeClaim?.claimName as string | undefined)
    .filter((n: string | undefined): n is string => typeof n === "string");
}

export class Storage {
  readonly #store: Store;
  readonly #docker: Docker;
  readonly #simId: string;
  readonly #labels: Record<string, string>;
  readonly #log: (line: string) => void;
  readonly #unlisten: () => void;
  /** Docker volume → the group its files were last given (fsGroupChangePolicy OnRootMismatch). */
  readonly #owned = new Map<string, number>();
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(api: Api, docker: Docker, simId: string, labels: Record<string, string>, log: (line: string) => void) {
    this.#store = api.store;
    this.#docker = docker;
    this.#simId = simId;
    this.#labels = labels;
    this.#log = log;
    this.#unlisten = this.#store.listen((c) => this.#onChange(c));
  }

  /** The Docker volume behind a claim (by its uid: a claim made again under a name gets a new one). */
  volumeName(pvc: KObject): string {
    return `kube-sim-${this.#simId}-pvc-${pvc.metadata.uid}`;
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((err) => this.#log(`storage: ${(err as Error).message}`));
    this.#pending.add(q);
    void q.finally(() => this.#pending.delete(q));
  }

  #onChange(c: Change): void {
    if (c.resource === "persistentvolumeclaims" && c.type === "ADDED") {
      this.#track(this.#provision(c.object));
    } else if (c.resource === "pods" && (c.type === "DELETED" || terminal(c.object))) {
      for (const claim of claimsOf(c.object)) this.#release(c.object.metadata.namespace ?? "", claim);
    }
  }

  /** Dynamic provisioning: a Docker volume, then the claim Bound to it. */
  async #provision(pvc: KObject): Promise<void> {
    await this.#docker.createVolume({
      Name: this.volumeName(pvc),
      Labels: {
        ...this.#labels,
        "kiln.kube-sim": this.#simId,
        "kiln.kube-sim.pvc": `${pvc.metadata.namespace}.${pvc.metadata.name}`,
      },
    });
    const cur = this.#store.get("persistentvolumeclaims", pvc.metadata.namespace, pvc.metadata.name);
    if (!cur || cur.metadata.uid !== pvc.metadata.uid) return;
    const next = structuredClone(cur);
    next.spec.volumeName = `pvc-${pvc.metadata.uid}`;
    next.status = {
      phase: "Bound",
      accessModes: cur.spec.accessModes,
      capacity: { storage: cur.spec.resources.requests.storage },
    };
    if (next.metadata.annotations?.["pv.kubernetes.io/bind-completed"] === undefined)
      next.metadata.annotations = { ...(next.metadata.annotations ?? {}), "pv.kubernetes.io/bind-completed": "yes" };
    this.#store.update("persistentvolumeclaims", next);
  }

  /** Pods that are not terminated and name the claim. */
  #users(ns: string, claim: string): KObject[] {
    return this.#store.list("pods", ns).filter((p) => !terminal(p) && claimsOf(p).includes(claim));
  }

  /** The API's delete: with the protection finalizer and a user, the claim only starts terminating. */
  deleteClaim(pvc: KObject): KObject {
    if (pvc.metadata.deletionTimestamp) return pvc;
    const marked = structuredClone(pvc);
    marked.metadata.deletionTimestamp = now();
    marked.metadata.deletionGracePeriodSeconds = 0;
    const updated = this.#store.update("persistentvolumeclaims", marked);
    this.#release(pvc.metadata.namespace ?? "", pvc.metadata.name);
    return this.#store.get("persistentvolumeclaims", pvc.metadata.namespace, pvc.metadata.name) ?? updated;
  }

  /** The protection controller: a terminating claim no pod uses loses its finalizer and goes. */
  #release(ns: string, name: string): void {
    const pvc = this.#store.get("persistentvolumeclaims", ns, name);
    if (!pvc?.metadata.deletionTimestamp || this.#users(ns, name).length > 0) return;
    const rest = (pvc.metadata.finalizers ?? []).filter((f: string) => f !== PVC_PROTECTION);
    if (rest.length > 0) {
      this.#store.update("persistentvolumeclaims", { ...pvc, metadata: { ...pvc.metadata, finalizers: rest } });
      return;
    }
    this.#store.remove("persistentvolumeclaims", ns, name);
    const volume = this.volumeName(pvc);
    this.#owned.delete(volume);
    // Reclaim policy Delete. A container of a pod deleted a moment ago may still hold it: retry.
    this.#track(
      (async () => {
        for (let i = 0; i < 50 && !this.#closed; i++) {
          try {
            await this.#docker.getVolume(volume).remove();
            return;
          } catch (err) {
            if ((err as { statusCode?: number }).statusCode === 404) return;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      })(),
    );
  }

  /** Why the scheduler cannot place a pod: a claim missing, being deleted, or not bound yet. */
  unschedulable(pod: KObject): string | undefined {
    for (const claim of claimsOf(pod)) {
      const pvc = this.#store.get("persistentvolumeclaims", pod.metadata.namespace, claim);
      if (!pvc) return `persistentvolumeclaim "${claim}" not found`;
      if (pvc.metadata.deletionTimestamp) return `persistentvolumeclaim "${claim}" is being deleted`;
      if (pvc.status?.phase !== "Bound") return "pod has unbound immediate PersistentVolumeClaims";
    }
    return undefined;
  }

  /** The Docker mounts of a pod's claims, their files given the pod's fsGroup first. */
  async mounts(pod: KObject, image: string): Promise<Docker.MountSettings[]> {
    const out: Docker.MountSettings[] = [];
    const c = pod.spec.containers[0];
    const fsGroup = pod.spec.securityContext?.fsGroup as number | undefined;
    for (const m of c.volumeMounts ?? []) {
      const vol = (pod.spec.volumes ?? []).find((v: KObject) => v.name === m.name);
      const claim = vol?.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const pvc = this.#store.get("persistentvolumeclaims", pod.metadata.namespace, claim);
      if (!pvc) throw new Error(`persistentvolumeclaim "${claim}" not found`);
      const source = this.volumeName(pvc);
      if (fsGroup !== undefined && this.#owned.get(source) !== fsGroup) {
        await this.#chown(source, fsGroup, image);
        this.#owned.set(source, fsGroup);
      }
      out.push({
        Type: "volume",
        Source: source,
        Target: m.mountPath,
        ReadOnly: m.readOnly === true || vol.persistentVolumeClaim.readOnly === true,
        VolumeOptions: { NoCopy: true },
      } as Docker.MountSettings);
    }
    return out;
  }

  /** The kubelet's volume ownership change: group fsGroup, group rw, setgid directories. */
  async #chown(volume: string, gid: number, image: string): Promise<void> {
    const container = await this.#docker.createContainer({
      Image: image,
      User: "0:0",
      Entrypoint: [
        "/bin/sh",
        "-c",
        'chgrp -R "$1" /v && chmod -R g+rwX /v && find /v -type d -exec chmod g+s {} +',
        "sh",
        String(gid),
      ],
      Labels: { ...this.#labels, "kiln.kube-sim": this.#simId },
      HostConfig: {
        NetworkMode: "none",
        Mounts: [
          { Type: "volume", Source: volume, Target: "/v", VolumeOptions: { NoCopy: true } } as Docker.MountSettings,
        ],
      },
    });
    try {
      await container.start();
      const result = (await container.wait()) as { StatusCode: number };
      if (result.StatusCode !== 0) throw new Error(`volume ownership change exited ${result.StatusCode}`);
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  /** Stops provisioning and releasing; the sim's close() removes the volumes left. */
  close(): void {
    this.#closed = true;
    this.#unlisten();
  }

  async settle(ms = 10_000): Promise<void> {
    await Promise.race([Promise.allSettled([...this.#pending]), new Promise((r) => setTimeout(r, ms))]);
  }
}
