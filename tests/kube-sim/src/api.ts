/**
 * The API server's generic verbs over the store: create, get, list, update (PUT), patch, delete,
 * with the admission and validation each kind needs. The HTTP layer (server.ts) and the sim's own
 * controllers both go through here, so a controller's write is exactly a client's write.
 *
 * Verbs and their semantics: https://kubernetes.io/docs/reference/using-api/api-concepts/
 * (#resource-versions, #dry-run, #generated-values); optimistic concurrency (a stale
 * resourceVersion is 409 Conflict): https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency
 */
import { randomBytes } from "node:crypto";
import { jsonPatch, mergePatch, sameJson } from "./patch.ts";
import {
  apiVersionOf,
  defaultNetworkPolicy,
  defaultPodSpec,
  dnsLabelErrors,
  metadataCauses,
  type ResourceDef,
  validateNetworkPolicy,
  validatePod,
  validatePodUpdate,
  validateReplicaSet,
} from "./resources.ts";
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  notFound,
  unsupportedMediaType,
} from "./status.ts";
import { admitClaim, validateClaimUpdate } from "./storage.ts";
import type { KObject, Store } from "./store.ts";
import { now } from "./store.ts";

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

/** Per-kind hooks the runtime (pods.ts) and controllers plug in. */
export interface Hooks {
  /** Known RuntimeClass names (node.k8s.io/v1), for the RuntimeClass admission check. */
  runtimeClass(name: string): KObject | undefined;
  /** A pod delete: the runtime stops the container and removes the object when done. */
  deletePod(pod: KObject, grace: number): KObject;
  /** Deleting a ReplicaSet: its pods are garbage-collected or orphaned. */
  afterReplicaSetDelete(rs: KObject, policy: DeleteOptions["propagationPolicy"]): void;
  afterNamespaceDelete(ns: string): void;
  /** A PVC delete: with its protection finalizer it may only start terminating (storage.ts). */
  deleteClaim(pvc: KObject): KObject;
}

// https://kubernetes.io/docs/reference/using-api/api-concepts/#generated-values: generateName
// gets a random suffix of 5 characters from this alphabet (apimachinery's utilrand).
const ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
export function randomSuffix(n = 5): string {
  const bytes = randomBytes(n);
  return Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join("");
}

const resourceName = (d: ResourceDef) => (d.group === "" ? d.plural : `${d.plural}.${d.group}`);

export class Api {
  readonly store: Store;
  hooks!: Hooks;

  constructor(store: Store) {
    this.store = store;
  }

  get(def: ResourceDef, ns: string | undefined, name: string): KObject {
    const o = this.store.get(def.plural, def.namespaced ? ns : undefined, name);
    if (!o) throw notFound(resourceName(def), name);
    return o;
  }

  #requireNamespace(def: ResourceDef, ns: string | undefined): void {
    if (!def.namespaced) return;
    if (!ns || !this.store.has("namespaces", undefined, ns)) throw notFound("namespaces", ns ?? "");
  }

  create(def: ResourceDef, ns: string | undefined, body: unknown, opts: { dryRun?: boolean } = {}): KObject {
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw badRequest("the body of the request was not a JSON object");
    const obj = structuredClone(body) as KObject;
    obj.metadata ??= {} as KObject["metadata"];
    if (obj.kind !== undefined && obj.kind !== def.kind)
      throw badRequest(
        `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(def)})`,
      );
    obj.kind = def.kind;
    obj.apiVersion = apiVersionOf(def);
    if (def.namespaced) {
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns)
        throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      obj.metadata.namespace = ns;
    } else delete obj.metadata.namespace;
    // Server-set fields are the server's (api-concepts#generated-values).
    for (const k of [
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "deletionTimestamp",
      "deletionGracePeriodSeconds",
      "generation",
    ])
      delete obj.metadata[k];
    if (!obj.metadata.name && obj.metadata.generateName) {
      obj.metadata.name = `${obj.metadata.generateName.slice(0, 58)}${randomSuffix()}`;
    }
    obj.metadata.generation = 1;
    this.#admit(def, obj);
    this.#requireNamespace(def, ns);
    if (this.store.has(def.plural, obj.metadata.namespace, obj.metadata.name))
      throw alreadyExists(resourceName(def), obj.metadata.name);
    if (opts.dryRun) return { ...obj, metadata: { ...obj.metadata, uid: "", creationTimestamp: now() } };
    return this.store.create(def.plural, obj);
  }

  /** Defaults, validation and admission for a new object. */
  #admit(def: ResourceDef, obj: KObject): void {
    switch (def.plural) {
      case "namespaces": {
        const causes = metadataCauses(obj, dnsLabelErrors);
        if (causes.length) throw invalid("Namespace", obj.metadata.name ?? "", causes);
        obj.spec = { finalizers: ["kubernetes"] };
        obj.status = { phase: "Active" };
        // https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#automatic-labelling
        obj.metadata.labels = { ...(obj.metadata.labels ?? {}), "kubernetes.io/metadata.name": obj.metadata.name };
        break;
      }
      case "pods": {
        obj.spec ??= {};
        defaultPodSpec(obj.spec);
        validatePod(obj);
        // RuntimeClass admission (https://kubernetes.io/docs/concepts/containers/runtime-class/):
        // a pod naming a RuntimeClass that does not exist is rejected at creation.
        const rc = obj.spec.runtimeClassName;
        if (rc && !this.hooks.runtimeClass(rc))
          throw forbidden("pods", obj.metadata.name, `pod rejected: RuntimeClass "${rc}" not found`);
        // https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase
        obj.status = {
          phase: "Pending",
          qosClass: qosClass(obj.spec),
        };
        break;
      }
      case "replicasets": {
        obj.spec ??= {};
        obj.spec.replicas ??= 1;
        if (obj.spec.template?.spec) defaultPodSpec(obj.spec.template.spec);
        validateReplicaSet(obj);
        obj.status = { replicas: 0 };
        break;
      }
      case "networkpolicies":
        defaultNetworkPolicy(obj);
        validateNetworkPolicy(obj);
        break;
      case "persistentvolumeclaims":
        admitClaim(obj);
        break;
      case "events":
        if (!obj.metadata.name)
          throw invalid("Event", "", [
            { field: "metadata.name", reason: "FieldValueRequired", message: "Required value" },
          ]);
        break;
      case "runtimeclasses":
        throw forbidden(
          "runtimeclasses.node.k8s.io",
          obj.metadata.name,
          "kube-sim serves RuntimeClasses read-only (startKubeSim({ runtimeClasses }))",
        );
    }
  }

  /**
   * Writes `next` over the stored object: optimistic concurrency on metadata.resourceVersion
   * (a stale one is 409 Conflict), server-owned fields kept, per-kind update rules.
   * `subresource` "status" writes only the status; the main resource never writes the status
   * (https://kubernetes.io/docs/concepts/overview/working-with-objects/#object-spec-and-status).
   */
  update(
    def: ResourceDef,
    ns: string | undefined,
    name: string,
    body: unknown,
    opts: { subresource?: "status"; dryRun?: boolean } = {},
  ): KObject {
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw badRequest("the body of the request was not a JSON object");
    const old = this.get(def, ns, name);
    const next = structuredClone(body) as KObject;
    next.metadata ??= {} as KObject["metadata"];
    if (next.metadata.name !== undefined && next.metadata.name !== name)
      throw badRequest(`the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`);
    if (def.namespaced && next.metadata.namespace !== undefined && next.metadata.namespace !== ns)
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    const rv = next.metadata.resourceVersion;
    if (rv !== undefined && rv !== "" && rv !== old.metadata.resourceVersion) throw conflict(resourceName(def), name);
    if (def.plural === "replicasets" && (rv === undefined || rv === ""))
      // ReplicaSets do not allow unconditional updates (pods do).
      throw invalid("ReplicaSet", name, [
        { field: "metadata.resourceVersion", message: "Invalid value: 0x0: must be specified for an update" },
      ]);
    next.kind = def.kind;
    next.apiVersion = apiVersionOf(def);
    next.metadata.name = name;
    if (def.namespaced) next.metadata.namespace = ns;
    for (const k of [
      "uid",
      "creationTimestamp",
      "deletionTimestamp",
      "deletionGracePeriodSeconds",
      "generation",
      "generateName",
    ]) {
      if (old.metadata[k] === undefined) delete next.metadata[k];
      else next.metadata[k] = old.metadata[k];
    }
    if (opts.subresource === "status") {
      const merged = { ...old, status: next.status };
      return this.#write(def, old, merged, opts.dryRun);
    }
    next.status = old.status;
    switch (def.plural) {
      case "pods":
        next.spec ??= {};
        defaultPodSpec(next.spec);
        validatePodUpdate(next, old);
        break;
      case "replicasets":
        next.spec ??= {};
        next.spec.replicas ??= 1;
        if (next.spec.template?.spec) defaultPodSpec(next.spec.template.spec);
        validateReplicaSet(next, old);
        break;
      case "networkpolicies":
        defaultNetworkPolicy(next);
        validateNetworkPolicy(next);
        break;
      case "persistentvolumeclaims":
        validateClaimUpdate(next, old);
        break;
      case "namespaces": {
        const causes = metadataCauses(next, dnsLabelErrors);
        if (causes.length) throw invalid("Namespace", name, causes);
        next.spec = old.spec;
        break;
      }
      case "runtimeclasses":
        throw forbidden("runtimeclasses.node.k8s.io", name, "kube-sim serves RuntimeClasses read-only");
    }
    // metadata.generation counts spec changes
    // (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/).
    if (!sameJson(next.spec, old.spec)) next.metadata.generation = (old.metadata.generation ?? 1) + 1;
    return this.#write(def, old, next, opts.dryRun);
  }

  #write(def: ResourceDef, old: KObject, next: KObject, dryRun?: boolean): KObject {
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    // A no-op update does not change the resourceVersion (api-concepts#resource-versions).
    if (sameJson(next, old)) return old;
    if (dryRun) return next;
    return this.store.update(def.plural, next);
  }

  /**
   * PATCH: the patch applies to the stored object; a metadata.resourceVersion in the result that
   * differs from the stored one is a precondition that failed (409), as for an update.
   */
  patch(
    def: ResourceDef,
    ns: string | undefined,
    name: string,
    contentType: string,
    body: unknown,
    opts: { subresource?: "status"; dryRun?: boolean } = {},
  ): KObject {
    const old = this.get(def, ns, name);
    const type = contentType.split(";")[0]!.trim();
    let patched: KObject;
    if (type === "application/json-patch+json") patched = jsonPatch(old, body);
    else if (type === "application/merge-patch+json" || type === "application/strategic-merge-patch+json") {
      if (!body || typeof body !== "object" || Array.isArray(body))
        throw badRequest("the body of the request was not a JSON object");
      patched = mergePatch(old, body);
    } else throw unsupportedMediaType(type);
    if (patched.metadata?.resourceVersion === undefined || patched.metadata.resourceVersion === null)
      patched.metadata = {
        ...(patched.metadata ?? {}),
        resourceVersion: old.metadata.resourceVersion,
      } as KObject["metadata"];
    return this.update(def, ns, name, patched, opts);
  }

  list(def: ResourceDef, ns: string | undefined): KObject[] {
    return this.store.list(def.plural, def.namespaced ? ns : undefined);
  }

  delete(def: ResourceDef, ns: string | undefined, name: string, opts: DeleteOptions = {}): KObject {
    const old = this.get(def, ns, name);
    const pre = opts.preconditions ?? {};
    // https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${resourceName(def)} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
        { name, kind: resourceName(def) },
      );
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${resourceName(def)} "${name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
        { name, kind: resourceName(def) },
      );
    if (def.plural === "runtimeclasses")
      throw forbidden("runtimeclasses.node.k8s.io", name, "kube-sim serves RuntimeClasses read-only");
    if (opts.dryRun) return old;
    if (def.plural === "pods") {
      const grace = opts.gracePeriodSeconds ?? old.spec.terminationGracePeriodSeconds ?? 30;
      return this.hooks.deletePod(old, Math.max(0, grace));
    }
    if (def.plural === "persistentvolumeclaims") return this.hooks.deleteClaim(old);
    const gone = this.store.remove(def.plural, ns, name)!;
    if (def.plural === "replicasets") this.hooks.afterReplicaSetDelete(gone, opts.propagationPolicy);
    if (def.plural === "namespaces") this.hooks.afterNamespaceDelete(name);
    return gone;
  }

  /** A core/v1 Event about an object, as the kubelet and controllers record them. */
  recordEvent(
    about: KObject,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    component = "kubelet",
  ): void {
    const ns = about.metadata.namespace ?? "default";
    if (!this.store.has("namespaces", undefined, ns)) return;
    const t = now();
    this.store.create("events", {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${about.metadata.name}.${Date.now().toString(16)}${randomSuffix(3)}`, namespace: ns },
      involvedObject: {
        kind: about.kind,
        namespace: about.metadata.namespace,
        name: about.metadata.name,
        uid: about.metadata.uid,
        apiVersion: about.apiVersion,
        resourceVersion: about.metadata.resourceVersion,
      },
      reason,
      message,
      source: { component, host: component === "kubelet" ? "kube-sim" : undefined },
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
      type,
    });
  }
}

/** https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/ */
function qosClass(spec: KObject["spec"]): string {
  let any = false;
  let guaranteed = true;
  for (const c of spec.containers ?? []) {
    const l = c.resources?.limits ?? {};
    const r = c.resources?.requests ?? {};
    if (Object.keys(l).length || Object.keys(r).length) any = true;
    for (const res of ["cpu", "memory"]) {
      if (l[res] === undefined || (r[res] !== undefined && String(r[res]) !== String(l[res]))) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}
