// The egress proxy's manifests (egress-proxy.ts) against the upstream Kubernetes schemas, as
// manifests.test.ts checks the sandbox's: kubernetes-models' generated validators, and a round
// trip through @kubernetes/client-node's generated serializer (what the engine sends) to catch
// fields the API does not define.
import { EGRESS_BLOCKED_V4 } from "@kiln/core/engine";
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { ReplicaSet } from "kubernetes-models/apps/v1/ReplicaSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { describe, expect, it } from "vitest";
import {
  PROXY_LABEL,
  PROXY_POD_LABELS,
  PROXY_UID,
  proxyConfig,
  proxyHash,
  proxyNetworkPolicy,
  proxyReplicaSet,
} from "../src/egress-proxy.ts";
import { K8S_LABEL, networkPolicies, POLICY_NAMES } from "../src/manifests.ts";

/** What the engine sends: client-node's serializer output (API field names, unknown fields dropped). */
function wire(object: object, type: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(ObjectSerializer.serialize(object, type))) as Record<string, unknown>;
}

/** Fields of `object` the serializer dropped (the API does not define them). */
function unknownFields(object: object, type: string): string[] {
  const kept = ObjectSerializer.serialize(object, type);
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (a && typeof a === "object") {
      for (const [k, v] of Object.entries(a)) {
        const other = (b as Record<string, unknown> | undefined)?.[k === "_from" ? "from" : k];
        if (other === undefined && v !== undefined) out.push(`${path}.${k}`);
        else walk(v, other, `${path}.${k}`);
      }
    }
  };
  walk(JSON.parse(JSON.stringify(object)), JSON.parse(JSON.stringify(kept)), "");
  return out;
}

const options = { namespace: "kiln", image: "registry.example/kiln-runtime:0123456789abcdef", replicas: 2 };
const proxy = { trust: ["172.20.0.9/32"], resolver: "172.20.0.9", hosts: { "a.test": "172.20.0.9" } };
const hash = proxyHash(options.image, proxy);

describe("the egress proxy's ReplicaSet", () => {
  const rs = proxyReplicaSet(hash, options, proxy);
  const pod = rs.spec?.template?.spec;
  const container = pod?.containers[0];

  it("is a valid apps/v1 ReplicaSet with no field the API does not define", () => {
    expect(() =>
      new ReplicaSet(wire(rs, "V1ReplicaSet") as ConstructorParameters<typeof ReplicaSet>[0]).validate(),
    ).not.toThrow();
    expect(unknownFields(rs, "V1ReplicaSet")).toEqual([]);
    const selector = rs.spec?.selector.matchLabels ?? {};
    for (const [k, v] of Object.entries(selector)) expect(rs.spec?.template?.metadata?.labels?.[k]).toBe(v);
    expect(rs.spec?.replicas).toBe(2);
    expect(rs.metadata?.name).toBe(`kiln-egress-proxy-${hash}`);
  });

  it("runs core's proxy program as nobody, hardened (restricted Pod Security profile)", () => {
    expect(container?.command?.slice(0, 3)).toEqual(["node", "--input-type=module", "-e"]);
    expect(container?.command?.[3]).toContain("kiln-proxy-ready");
    expect(JSON.parse(container?.env?.[0]?.value ?? "")).toEqual(proxyConfig(proxy));
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.enableServiceLinks).toBe(false);
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(container?.securityContext?.capabilities?.add).toBeUndefined();
    expect(container?.resources?.limits).toMatchObject({ cpu: "1", memory: "256Mi" });
  });

  it("is named by a hash of its program, configuration and image", () => {
    expect(proxyHash(options.image, proxy)).toBe(hash);
    expect(proxyHash(options.image, {})).not.toBe(hash);
    expect(proxyHash("other:1", proxy)).not.toBe(hash);
  });
});

describe("the network policies of allow-list sandboxes and the proxy", () => {
  const np = proxyNetworkPolicy(hash, options, proxy);

  it("are valid networking.k8s.io/v1 NetworkPolicies (as sent)", () => {
    const sandboxes = networkPolicies({ namespace: "kiln", egressProxy: { podLabels: PROXY_POD_LABELS, port: 3128 } });
    for (const [p, name] of [...sandboxes.map((x) => [x, x.metadata?.name]), [np, "proxy"]] as const) {
      const sent = wire(p as object, "V1NetworkPolicy");
      expect(
        () => new NetworkPolicy(sent as ConstructorParameters<typeof NetworkPolicy>[0]).validate(),
        String(name),
      ).not.toThrow();
      expect(unknownFields(p as object, "V1NetworkPolicy"), String(name)).toEqual([]);
    }
    const allow = sandboxes.find((p) => p.metadata?.name === POLICY_NAMES.allow);
    // An allow-list sandbox reaches the proxy's pods on its port, and nothing else (no DNS either).
    expect(allow?.spec?.podSelector?.matchLabels).toEqual({ [K8S_LABEL.networkMode]: "allow" });
    expect(allow?.spec?.egress).toEqual([
      { to: [{ podSelector: { matchLabels: PROXY_POD_LABELS } }], ports: [{ protocol: "TCP", port: 3128 }] },
    ]);
  });

  it("lets only allow-list sandboxes in, on the proxy's port; the proxy out to the internet minus core's blocked ranges", () => {
    const sent = wire(np, "V1NetworkPolicy") as {
      spec: { ingress: unknown[]; egress: { to: { ipBlock?: { cidr: string; except?: string[] } }[] }[] };
    };
    expect(np.spec?.podSelector?.matchLabels).toEqual({ ...PROXY_POD_LABELS, [PROXY_LABEL.hash]: hash });
    expect(np.spec?.policyTypes).toEqual(["Ingress", "Egress"]);
    // On the wire the field is `from` (client-node's model calls it _from).
    expect(sent.spec.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { [K8S_LABEL.networkMode]: "allow" } } }],
        ports: [{ protocol: "TCP", port: 3128 }],
      },
    ]);
    const v4 = sent.spec.egress[0]?.to[0]?.ipBlock;
    expect(v4?.cidr).toBe("0.0.0.0/0");
    expect(v4?.except).toEqual(EGRESS_BLOCKED_V4);
    // The test-only trusted address is allowed on its own (production passes none).
    expect(sent.spec.egress[0]?.to[2]).toEqual({ ipBlock: { cidr: "172.20.0.9/32" } });
    expect(proxyNetworkPolicy(hash, options, {}).spec?.egress?.[0]?.to).toHaveLength(2);
  });
});
