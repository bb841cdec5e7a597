// The manifests Kiln sends to a cluster, checked against the upstream Kubernetes schemas shipped
// in npm: kubernetes-models' validators are ajv code generated from the Kubernetes OpenAPI
// document (types, formats such as quantities, required fields, enums), and
// @kubernetes/client-node's serializer, generated from the same document, keeps only the fields
// the API defines, so a typo'd field (which the schema's open objects would let through) shows up
// as a difference after a round trip.
import { EngineUnavailableError } from "@kiln/core";
import type { ContainerSpec } from "@kiln/core/engine";
import { EGRESS_BLOCKED_V4, LABEL } from "@kiln/core/engine";
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { ReplicaSet } from "kubernetes-models/apps/v1/ReplicaSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Pod } from "kubernetes-models/v1/Pod";
import { describe, expect, it } from "vitest";
import { claimName, volumeClaim, workspaceClaimManifest } from "../src/claims.ts";
import { KubernetesEngine } from "../src/engine.ts";
import { K8S_LABEL, networkPolicies, podLabels, poolReplicaSet, sandboxPod, validLabel } from "../src/manifests.ts";

const spec: ContainerSpec = {
  name: "kiln.my-sandbox_1",
  image: "kiln-runtime:0123456789abcdef",
  labels: {
    [LABEL.kind]: "sandbox",
    [LABEL.name]: "my-sandbox_1",
    [LABEL.language]: "python",
    [LABEL.createdAt]: "2026-12-01T18:00:00.000Z",
    [LABEL.creator]: "host/123",
    [LABEL.resources]: JSON.stringify({ cpus: 1, memoryMb: 512, pids: 256 }),
    "kiln.label.team": "a b c",
  },
  env: { A: "1", B: "two words" },
  cpus: 1.5,
  memoryMb: 768,
  pids: 256,
  network: "egress",
  volumes: [],
};

/** Fields the API does not define, found by a round trip through the generated serializer. */
function unknownFields(object: object, type: string): string[] {
  const kept = ObjectSerializer.serialize(object, type);
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (a && typeof a === "object") {
      for (const [k, v] of Object.entries(a)) {
        const other = (b as Record<string, unknown> | undefined)?.[k];
        if (other === undefined && v !== undefined) out.push(`${path}.${k}`);
        else walk(v, other, `${path}.${k}`);
      }
    }
  };
  walk(JSON.parse(JSON.stringify(object)), JSON.parse(JSON.stringify(kept)), "");
  return out;
}

describe("the sandbox pod", () => {
  const pod = sandboxPod("0123456789abcdef0123456789abcdef", spec, { namespace: "kiln", runtimeClassName: "gvisor" });

  it("is a valid v1 Pod with no field the API does not define", () => {
    expect(() => new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate()).not.toThrow();
    expect(unknownFields(pod, "V1Pod")).toEqual([]);
  });

  it("a mistake is caught: a bad quantity by the schema, an unknown field by the round trip", () => {
    const bad = structuredClone(pod);
    (bad.spec?.containers[0]?.resources?.limits as Record<string, string>).cpu = "one and a half";
    expect(() => new Pod(bad as ConstructorParameters<typeof Pod>[0]).validate()).toThrow(/quantity/);
    const typo = structuredClone(pod) as unknown as { spec: { containers: Record<string, unknown>[] } };
    (typo.spec.containers[0] as Record<string, unknown>).securityContxt = {};
    expect(unknownFields(typo, "V1Pod")).toEqual([".spec.containers.0.securityContxt"]);
  });

  it("carries Kiln's hardening", () => {
    const s = pod.spec;
    const c = s?.containers[0];
    expect(s?.automountServiceAccountToken).toBe(false);
    expect(s?.enableServiceLinks).toBe(false);
    expect(s?.restartPolicy).toBe("Never");
    expect(s?.runtimeClassName).toBe("gvisor");
    expect(s?.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      runAsNonRoot: true,
    });
    expect(c?.securityContext?.capabilities?.add).toBeUndefined();
    expect(c?.resources?.limits).toEqual({ cpu: "1500m", memory: "768Mi", "ephemeral-storage": "4096Mi" });
    expect(c?.resources?.requests).toEqual(c?.resources?.limits);
    expect(c?.env).toEqual([
      { name: "A", value: "1" },
      { name: "B", value: "two words" },
      { name: "KILN_AGENT_SOCKET", value: "/run/kiln-agent/agent.sock" },
    ]);
  });

  it("keeps every Kiln label in an annotation, and mirrors the ones valid as Kubernetes labels", () => {
    expect(JSON.parse(pod.metadata?.annotations?.["kiln.labels"] ?? "")).toEqual(spec.labels);
    const labels = pod.metadata?.labels ?? {};
    expect(labels[LABEL.kind]).toBe("sandbox");
    expect(labels[LABEL.language]).toBe("python");
    expect(labels[K8S_LABEL.id]).toBe("0123456789abcdef0123456789abcdef");
    expect(labels[K8S_LABEL.networkMode]).toBe("egress");
    // Not valid as label values: only in the annotation.
    expect(labels[LABEL.createdAt]).toBeUndefined();
    expect(labels["kiln.label.team"]).toBeUndefined();
    for (const [k, v] of Object.entries(labels)) expect(validLabel(k, v), `${k}=${v}`).toBe(true);
  });
});

describe("the warm pool's ReplicaSet", () => {
  const rs = poolReplicaSet(
    "0123456789abcdef",
    3,
    { ...spec, name: "kiln-pool-0123456789abcdef" },
    { namespace: "kiln" },
  );

  it("is a valid apps/v1 ReplicaSet whose selector matches its template", () => {
    expect(() => new ReplicaSet(rs as ConstructorParameters<typeof ReplicaSet>[0]).validate()).not.toThrow();
    expect(unknownFields(rs, "V1ReplicaSet")).toEqual([]);
    const selector = rs.spec?.selector.matchLabels ?? {};
    expect(selector).toEqual({ [LABEL.kind]: "pool", [LABEL.shape]: "0123456789abcdef" });
    for (const [k, v] of Object.entries(selector)) expect(rs.spec?.template?.metadata?.labels?.[k]).toBe(v);
    expect(rs.spec?.replicas).toBe(3);
  });

  it("a claimed member's labels leave the selector", () => {
    const claimed = podLabels({ [LABEL.kind]: "sandbox" }, { id: "ab".repeat(16), name: "kiln-abc", network: "none" });
    const selector = rs.spec?.selector.matchLabels ?? {};
    expect(Object.entries(selector).every(([k, v]) => claimed[k] === v)).toBe(false);
  });
});

describe("the network policies", () => {
  const policies = networkPolicies({
    namespace: "kiln",
    egressProxy: { podLabels: { app: "kiln-egress-proxy" }, port: 3128 },
  });

  it("are valid networking.k8s.io/v1 NetworkPolicies", () => {
    for (const p of policies) {
      expect(() => new NetworkPolicy(p as ConstructorParameters<typeof NetworkPolicy>[0]).validate()).not.toThrow();
      expect(unknownFields(p, "V1NetworkPolicy")).toEqual([]);
    }
  });

  it("deny all ingress and egress to every Kiln pod; egress pods get the internet minus core's blocked ranges", () => {
    const [deny, egress, allow] = policies;
    expect(deny?.spec?.podSelector).toEqual({ matchExpressions: [{ key: LABEL.kind, operator: "Exists" }] });
    expect(deny?.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(deny?.spec?.ingress).toEqual([]);
    expect(deny?.spec?.egress).toEqual([]);
    expect(egress?.spec?.podSelector?.matchLabels).toEqual({ [K8S_LABEL.networkMode]: "egress" });
    const v4 = egress?.spec?.egress?.[0]?.to?.[0]?.ipBlock;
    expect(v4?.cidr).toBe("0.0.0.0/0");
    expect(v4?.except).toEqual(EGRESS_BLOCKED_V4);
    for (const net of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]) {
      expect(v4?.except).toContain(net);
    }
    // DNS only at the cluster's resolver pods.
    expect(egress?.spec?.egress?.[1]?.ports?.map((p) => p.port)).toEqual([53, 53]);
    expect(allow?.spec?.egress).toEqual([
      {
        to: [{ podSelector: { matchLabels: { app: "kiln-egress-proxy" } } }],
        ports: [{ protocol: "TCP", port: 3128 }],
      },
    ]);
  });
});

describe("volumes as PersistentVolumeClaims", () => {
  const withVolumes: ContainerSpec = {
    ...spec,
    volumes: [
      { volume: "kiln-vol-Data_1", mountPath: "/data", readOnly: false },
      { volume: "kiln-vol-ro", mountPath: "/ref", readOnly: true },
    ],
  };
  const pod = sandboxPod("0123456789abcdef0123456789abcdef", withVolumes, { namespace: "kiln" });

  it("a pod mounting volumes is a valid v1 Pod; each volume is its claim, read-only where asked", () => {
    expect(() => new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate()).not.toThrow();
    expect(unknownFields(pod, "V1Pod")).toEqual([]);
    expect(pod.spec?.volumes?.filter((v) => v.persistentVolumeClaim)).toEqual([
      { name: "kiln-vol-0", persistentVolumeClaim: { claimName: claimName("kiln-vol-Data_1"), readOnly: false } },
      { name: "kiln-vol-1", persistentVolumeClaim: { claimName: claimName("kiln-vol-ro"), readOnly: true } },
    ]);
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({
      name: "kiln-vol-1",
      mountPath: "/ref",
      readOnly: true,
    });
  });

  it("claims are valid PersistentVolumeClaims; names are DNS names, distinct, for any Kiln name", () => {
    const claim = volumeClaim(
      "kiln-vol-Data_1",
      { "kiln.kind": "volume" },
      { "kiln.volume-name": "kiln-vol-Data_1" },
      {
        storageClassName: "fast",
        size: "5Gi",
        accessMode: "ReadWriteMany",
        extraLabels: { team: "x" },
      },
    );
    const ws = workspaceClaimManifest("0123456789abcdef0123456789abcdef", 4096, {});
    for (const c of [claim, ws]) {
      expect(() =>
        new PersistentVolumeClaim(c as ConstructorParameters<typeof PersistentVolumeClaim>[0]).validate(),
      ).not.toThrow();
      expect(unknownFields(c, "V1PersistentVolumeClaim")).toEqual([]);
    }
    expect(claim.spec).toEqual({
      accessModes: ["ReadWriteMany"],
      resources: { requests: { storage: "5Gi" } },
      storageClassName: "fast",
    });
    const names = ["a", "A", "a_", "a.", "a-", "Data_1", "data-1", "data.1", "x".repeat(63), "...", "-", "_"].map((n) =>
      claimName(`kiln-vol-${n}`),
    );
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    for (const n of names) expect(n.length).toBeLessThanOrEqual(63);
  });
});

describe("admission (fail closed)", () => {
  const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:65531" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;

  it("refuses every sandbox until the user declares that the CNI enforces NetworkPolicy", async () => {
    const engine = new KubernetesEngine({ kubeconfig, namespace: "kiln" });
    await expect(engine.createContainer({ ...spec, network: "none" })).rejects.toThrow(/networkPolicy: "enforced"/);
    expect(() => engine.warmPool({ ...spec, network: "none" }, "k", 1)).toThrow(/NetworkPolicies/);
  });

  it("refuses gVisor without a RuntimeClass; admits volumes (PVCs) and allow-lists (egress-proxy.test.ts)", () => {
    const engine = new KubernetesEngine({ kubeconfig, namespace: "kiln", networkPolicy: "enforced" });
    expect(() => engine.admit({ ...spec, runtime: "gvisor" })).toThrow(/RuntimeClass/);
    expect(() =>
      engine.admit({ ...spec, volumes: [{ volume: "v", mountPath: "/data", readOnly: false }] }),
    ).not.toThrow();
    expect(() => engine.admit({ ...spec, network: { allow: ["pypi.org"] } })).not.toThrow();
    expect(() => engine.admit(spec)).not.toThrow();
  });

  it("an unreachable API server is EngineUnavailableError", async () => {
    const engine = new KubernetesEngine({ kubeconfig, namespace: "kiln", networkPolicy: "enforced" });
    await expect(engine.ping()).rejects.toBeInstanceOf(EngineUnavailableError);
  });
});
