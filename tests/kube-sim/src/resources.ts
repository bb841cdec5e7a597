/**
 * The kinds the sim serves, their discovery entries, defaults and validation. Each rule cites the
 * page it follows; the API reference pages (https://kubernetes.io/docs/reference/kubernetes-api/)
 * give the fields and their defaults.
 */
import { canonical, sameJson } from "./patch.ts";
import { selectorFromObject } from "./selectors.ts";
import { invalid, type StatusCause } from "./status.ts";
import type { KObject } from "./store.ts";

export interface ResourceDef {
  group: string; // "" for core
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  /** Subresources served (discovery lists them as `<plural>/<sub>`). */
  subresources: { name: string; kind: string; verbs: string[] }[];
}

export const apiVersionOf = (d: ResourceDef) => (d.group === "" ? d.version : `${d.group}/${d.version}`);

const ALL_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

export const RESOURCES: ResourceDef[] = [
  {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
    verbs: ALL_VERBS,
    shortNames: ["ns"],
    subresources: [],
  },
  {
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["po"],
    subresources: [
      { name: "exec", kind: "PodExecOptions", verbs: ["create", "get"] },
      { name: "log", kind: "Pod", verbs: ["get"] },
      { name: "status", kind: "Pod", verbs: ["get"] },
    ],
  },
  {
    group: "",
    version: "v1",
    plural: "events",
    kind: "Event",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["ev"],
    subresources: [],
  },
  {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    kind: "PersistentVolumeClaim",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["pvc"],
    subresources: [{ name: "status", kind: "PersistentVolumeClaim", verbs: ["get"] }],
  },
  {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    kind: "ReplicaSet",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["rs"],
    subresources: [
      { name: "scale", kind: "Scale", verbs: ["get", "patch", "update"] },
      { name: "status", kind: "ReplicaSet", verbs: ["get"] },
    ],
  },
  {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    kind: "NetworkPolicy",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["netpol"],
    subresources: [],
  },
  {
    group: "node.k8s.io",
    version: "v1",
    plural: "runtimeclasses",
    kind: "RuntimeClass",
    namespaced: false,
    verbs: ["get", "list", "watch"],
    subresources: [],
  },
];

export function findResource(group: string, version: string, plural: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

// https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function dnsSubdomainErrors(v: string): string | undefined {
  if (v.length > 253) return "must be no more than 253 characters";
  if (!DNS_SUBDOMAIN.test(v))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export function dnsLabelErrors(v: string): string | undefined {
  if (v.length > 63) return "must be no more than 63 characters";
  if (!DNS_LABEL.test(v))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

function qualifiedNameErrors(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix === "" || dnsSubdomainErrors(prefix)))
    return "prefix part must be a DNS subdomain";
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters";
  return undefined;
}

/** https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/ and .../annotations/ */
export function metadataCauses(obj: KObject, nameRule: (v: string) => string | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const md = obj.metadata;
  if (!md.name)
    causes.push({
      field: "metadata.name",
      reason: "FieldValueRequired",
      message: "Required value: name or generateName is required",
    });
  else {
    const e = nameRule(md.name);
    if (e) causes.push({ field: "metadata.name", message: `Invalid value: "${md.name}": ${e}` });
  }
  for (const [k, v] of Object.entries(md.labels ?? {})) {
    const ke = qualifiedNameErrors(k);
    if (ke) causes.push({ field: "metadata.labels", message: `Invalid value: "${k}": ${ke}` });
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v))
      causes.push({
        field: "metadata.labels",
        message: `Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters`,
      });
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(md.annotations ?? {})) {
    const ke = qualifiedNameErrors(k);
    if (ke) causes.push({ field: "metadata.annotations", message: `Invalid value: "${k}": ${ke}` });
    if (typeof v !== "string")
      causes.push({ field: `metadata.annotations.${k}`, message: "Invalid value: must be a string" });
    annotationBytes += k.length + String(v).length;
  }
  if (annotationBytes > 256 * 1024)
    causes.push({
      field: "metadata.annotations",
      reason: "FieldValueTooLong",
      message: "Too long: must have at most 262144 bytes",
    });
  return causes;
}

// --- Pods --------------------------------------------------------------------------------------

/**
 * Defaults the API server fills in for a Pod
 * (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/).
 */
export function defaultPodSpec(spec: KObject["spec"]): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.serviceAccountName ??= spec.serviceAccount ?? "default";
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= "PreemptLowerPriority";
  for (const c of spec.containers ?? []) {
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    // https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting
    const tag = typeof c.image === "string" ? c.image.split("/").at(-1)! : "";
    c.imagePullPolicy ??= !tag.includes(":") || tag.endsWith(":latest") ? "Always" : "IfNotPresent";
    c.resources ??= {};
    // https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#requests-and-limits:
    // a limit without a request defaults the request to the limit.
    if (c.resources.limits) c.resources.requests = { ...c.resources.limits, ...(c.resources.requests ?? {}) };
  }
}

export function podSpecCauses(spec: KObject["spec"], path: string): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!spec || typeof spec !== "object")
    return [{ field: path, reason: "FieldValueRequired", message: "Required value" }];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0)
    causes.push({ field: `${path}.containers`, reason: "FieldValueRequired", message: "Required value" });
  const names = new Set<string>();
  (Array.isArray(containers) ? containers : []).forEach((c, i) => {
    const f = `${path}.containers[${i}]`;
    if (!c.name) causes.push({ field: `${f}.name`, reason: "FieldValueRequired", message: "Required value" });
    else {
      const e = dnsLabelErrors(c.name);
      if (e) causes.push({ field: `${f}.name`, message: `Invalid value: "${c.name}": ${e}` });
      if (names.has(c.name))
        causes.push({ field: `${f}.name`, reason: "FieldValueDuplicate", message: `Duplicate value: "${c.name}"` });
      names.add(c.name);
    }
    if (!c.image) causes.push({ field: `${f}.image`, reason: "FieldValueRequired", message: "Required value" });
    for (const [j, e] of (c.env ?? []).entries()) {
      if (!e?.name)
        causes.push({ field: `${f}.env[${j}].name`, reason: "FieldValueRequired", message: "Required value" });
    }
    for (const kind of ["limits", "requests"] as const) {
      for (const [res, q] of Object.entries(c.resources?.[kind] ?? {})) {
        if (parseQuantity(String(q)) === undefined)
          causes.push({
            field: `${f}.resources.${kind}[${res}]`,
            message: `Invalid value: "${q}": must be a quantity`,
          });
      }
    }
    const volumeNames = new Set((spec.volumes ?? []).map((v: { name: string }) => v.name));
    for (const [j, m] of (c.volumeMounts ?? []).entries()) {
      if (!volumeNames.has(m.name))
        causes.push({
          field: `${f}.volumeMounts[${j}].name`,
          reason: "FieldValueNotFound",
          message: `Not found: "${m.name}"`,
        });
    }
  });
  if (containers?.length > 1)
    causes.push({
      field: `${path}.containers`,
      reason: "FieldValueNotSupported",
      message: "Unsupported value: kube-sim runs exactly one container per pod",
    });
  // Not simulated, so refused rather than silently ignored.
  for (const f of ["initContainers", "ephemeralContainers"])
    if (Array.isArray(spec[f]) && spec[f].length > 0)
      causes.push({
        field: `${path}.${f}`,
        reason: "FieldValueNotSupported",
        message: `Unsupported value: kube-sim does not run ${f}`,
      });
  for (const f of ["hostNetwork", "hostPID", "hostIPC"])
    if (spec[f] === true)
      causes.push({
        field: `${path}.${f}`,
        reason: "FieldValueNotSupported",
        message: `Unsupported value: true: kube-sim does not simulate ${f}`,
      });
  if (!["Always", "OnFailure", "Never"].includes(spec.restartPolicy))
    causes.push({
      field: `${path}.restartPolicy`,
      reason: "FieldValueNotSupported",
      message: `Unsupported value: "${spec.restartPolicy}": supported values: "Always", "OnFailure", "Never"`,
    });
  const ads = spec.activeDeadlineSeconds;
  if (ads !== undefined && ads !== null && (!Number.isInteger(ads) || ads <= 0))
    causes.push({
      field: `${path}.activeDeadlineSeconds`,
      message: `Invalid value: ${ads}: must be between 1 and 2147483647, inclusive`,
    });
  return causes;
}

export function validatePod(pod: KObject): void {
  const causes = [...metadataCauses(pod, dnsSubdomainErrors), ...podSpecCauses(pod.spec, "spec")];
  if (causes.length) throw invalid("Pod", pod.metadata.name ?? "", causes);
}

/**
 * https://kubernetes.io/docs/concepts/workloads/pods/#pod-update-and-replacement: a Pod's spec is
 * immutable except the container images, activeDeadlineSeconds (set, or lowered) and additions to
 * tolerations.
 */
export function validatePodUpdate(next: KObject, old: KObject): void {
  const strip = (spec: KObject["spec"]) => {
    const s = structuredClone(spec);
    for (const c of s.containers ?? []) delete c.image;
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    return JSON.stringify(canonical(s));
  };
  const causes = [...metadataCauses(next, dnsSubdomainErrors)];
  if (strip(next.spec) !== strip(old.spec))
    causes.push({
      field: "spec",
      reason: "FieldValueForbidden",
      message:
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    });
  const was = old.spec.activeDeadlineSeconds;
  const now = next.spec.activeDeadlineSeconds;
  if (was !== undefined && (now === undefined || now > was))
    causes.push({
      field: "spec.activeDeadlineSeconds",
      reason: "FieldValueInvalid",
      message: `Invalid value: ${now}: must be less than or equal to previous value`,
    });
  if (causes.length) throw invalid("Pod", next.metadata.name, causes);
}

// --- ReplicaSets -------------------------------------------------------------------------------

/** https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#writing-a-replicaset-manifest */
export function validateReplicaSet(rs: KObject, old?: KObject): void {
  const causes = metadataCauses(rs, dnsSubdomainErrors);
  const spec = rs.spec ?? {};
  if (spec.replicas !== undefined && (!Number.isInteger(spec.replicas) || spec.replicas < 0))
    causes.push({
      field: "spec.replicas",
      message: `Invalid value: ${spec.replicas}: must be greater than or equal to 0`,
    });
  const sel = spec.selector;
  if (!sel || (!sel.matchLabels && !sel.matchExpressions))
    causes.push({ field: "spec.selector", reason: "FieldValueRequired", message: "Required value" });
  else if (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)
    causes.push({ field: "spec.selector", message: "Invalid value: empty selector is invalid for deployment" });
  const tplLabels = spec.template?.metadata?.labels ?? {};
  if (sel && !selectorFromObject(sel)(tplLabels))
    causes.push({
      field: "spec.template.metadata.labels",
      message: `Invalid value: ${JSON.stringify(tplLabels)}: \`selector\` does not match template \`labels\``,
    });
  if (!spec.template?.spec)
    causes.push({ field: "spec.template.spec", reason: "FieldValueRequired", message: "Required value" });
  else {
    causes.push(...podSpecCauses(spec.template.spec, "spec.template.spec"));
    // https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#pod-template
    if (spec.template.spec.restartPolicy !== "Always")
      causes.push({
        field: "spec.template.spec.restartPolicy",
        reason: "FieldValueNotSupported",
        message: `Unsupported value: "${spec.template.spec.restartPolicy}": supported values: "Always"`,
      });
  }
  // apps/v1: "spec.selector is immutable after creation"
  if (old && !sameJson(old.spec.selector, spec.selector))
    causes.push({
      field: "spec.selector",
      message: `Invalid value: ${JSON.stringify(spec.selector)}: field is immutable`,
    });
  if (causes.length) throw invalid("ReplicaSet", rs.metadata.name ?? "", causes);
}

// --- NetworkPolicies ---------------------------------------------------------------------------

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$|^[0-9a-fA-F:]+\/\d{1,3}$/;

/** https://kubernetes.io/docs/concepts/services-networking/network-policies/ */
export function defaultNetworkPolicy(np: KObject): void {
  np.spec ??= {};
  // "If no policyTypes are specified on a NetworkPolicy then by default Ingress will always be
  // set and Egress will be set if the NetworkPolicy has any egress rules."
  if (!np.spec.policyTypes || np.spec.policyTypes.length === 0)
    np.spec.policyTypes = np.spec.egress?.length ? ["Ingress", "Egress"] : ["Ingress"];
}

export function validateNetworkPolicy(np: KObject): void {
  const causes = metadataCauses(np, dnsSubdomainErrors);
  const spec = np.spec ?? {};
  if (!spec.podSelector || typeof spec.podSelector !== "object")
    causes.push({ field: "spec.podSelector", reason: "FieldValueRequired", message: "Required value" });
  for (const t of spec.policyTypes ?? [])
    if (t !== "Ingress" && t !== "Egress")
      causes.push({
        field: "spec.policyTypes",
        reason: "FieldValueNotSupported",
        message: `Unsupported value: "${t}": supported values: "Ingress", "Egress"`,
      });
  const peers = (rules: KObject[] | undefined, dir: "ingress" | "egress", key: "from" | "to") =>
    (rules ?? []).forEach((rule, i) => {
      for (const [j, p] of (rule.ports ?? []).entries()) {
        if (p.protocol && !["TCP", "UDP", "SCTP"].includes(p.protocol))
          causes.push({
            field: `spec.${dir}[${i}].ports[${j}].protocol`,
            reason: "FieldValueNotSupported",
            message: `Unsupported value: "${p.protocol}": supported values: "SCTP", "TCP", "UDP"`,
          });
      }
      for (const [j, peer] of (rule[key] ?? []).entries()) {
        const f = `spec.${dir}[${i}].${key}[${j}]`;
        const set = ["podSelector", "namespaceSelector", "ipBlock"].filter((k) => peer[k] !== undefined);
        if (set.length === 0)
          causes.push({ field: f, reason: "FieldValueRequired", message: "Required value: must specify a peer" });
        if (peer.ipBlock && set.length > 1)
          causes.push({
            field: f,
            reason: "FieldValueForbidden",
            message: "Forbidden: may not specify more than 1 peer type",
          });
        if (peer.ipBlock) {
          if (!CIDR.test(peer.ipBlock.cidr ?? ""))
            causes.push({
              field: `${f}.ipBlock.cidr`,
              message: `Invalid value: "${peer.ipBlock.cidr}": must be a valid CIDR`,
            });
          for (const [k, ex] of (peer.ipBlock.except ?? []).entries())
            if (!CIDR.test(ex))
              causes.push({
                field: `${f}.ipBlock.except[${k}]`,
                message: `Invalid value: "${ex}": must be a valid CIDR`,
              });
        }
      }
    });
  peers(spec.ingress, "ingress", "from");
  peers(spec.egress, "egress", "to");
  if (causes.length) throw invalid("NetworkPolicy", np.metadata.name ?? "", causes);
}

// --- Quantities --------------------------------------------------------------------------------

const SUFFIX: Record<string, number> = {
  "": 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/ */
export function parseQuantity(q: string): number | undefined {
  const m = /^([+-]?[0-9.]+)(e[+-]?\d+|[a-zA-Z]*)$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (Number.isNaN(n)) return undefined;
  if (m[2]!.startsWith("e")) return n * 10 ** Number(m[2]!.slice(1));
  const f = SUFFIX[m[2]!];
  return f === undefined ? undefined : n * f;
}
