/**
 * NetworkPolicy semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
 * - #the-two-sorts-of-pod-isolation: a pod is isolated for egress (ingress) when at least one
 *   policy with Egress (Ingress) in policyTypes selects it; it may then send (receive) only what
 *   the union of those policies' rules allows; replies to allowed connections are always allowed.
 * - #behavior-of-to-and-from-selectors: podSelector = pods of the policy's namespace,
 *   namespaceSelector = all pods of the matching namespaces, both = the pods matching the
 *   podSelector in the matching namespaces, ipBlock = the CIDR minus `except`.
 * - a rule without `to`/`from` matches every peer; a rule without `ports` every port;
 *   `port` + `endPort` is a range; named ports are not resolved here (such a port matches nothing).
 *
 * Enforcement: egress deny-all (isolated, no rules) disconnects the container from the sim's
 * network (kubelet.ts). Any other isolation becomes an iptables filter table in the pod's own
 * network namespace (`nsenter -t <pid> -n iptables-restore`), IPv4 only (the sim's network has
 * no IPv6). That needs root on the host; without it the kubelet fails closed (the pod loses its
 * network and gets a Warning event).
 */
import { selectorFromObject } from "./selectors.ts";
import type { KObject, Store } from "./store.ts";

export interface PodIsolation {
  /** Egress deny-all: no network at all. */
  noNetwork: boolean;
  /** The filter table to apply in the pod's namespace, or undefined when nothing is isolated. */
  rules: string | undefined;
}

const V4_CIDR = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
const V4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function isolationOf(pod: KObject, store: Store): PodIsolation {
  const ns = pod.metadata.namespace!;
  const selecting = store
    .list("networkpolicies", ns)
    .filter((np) => selectorFromObject(np.spec.podSelector)(pod.metadata.labels));
  const egress = selecting.filter((np) => (np.spec.policyTypes ?? []).includes("Egress"));
  const ingress = selecting.filter((np) => (np.spec.policyTypes ?? []).includes("Ingress"));
  const egressRules: KObject[] = egress.flatMap((np) =>
    (np.spec.egress ?? []).map((r: KObject) => ({ ...r, ns: np.metadata.namespace })),
  );
  const ingressRules: KObject[] = ingress.flatMap((np) =>
    (np.spec.ingress ?? []).map((r: KObject) => ({ ...r, ns: np.metadata.namespace })),
  );
  if (egress.length > 0 && egressRules.length === 0) return { noNetwork: true, rules: undefined };
  if (egress.length === 0 && ingress.length === 0) return { noNetwork: false, rules: undefined };
  const lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
  const chains: string[] = [];
  const chain = (dir: "OUTPUT" | "INPUT", rules: KObject[]) => {
    const iface = dir === "OUTPUT" ? "-o lo" : "-i lo";
    const addr = dir === "OUTPUT" ? "-d" : "-s";
    lines.push(`-A ${dir} ${iface} -j ACCEPT`, `-A ${dir} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`);
    // The sim has no cluster DNS pods: Docker's embedded DNS stands in for them. Its forwarder
    // sends the queries from inside the pod's namespace as root (dockerd), so when a rule allows
    // port 53 (the usual "DNS to kube-dns" rule), root's queries on port 53 may leave.
    if (dir === "OUTPUT" && rules.some((r) => (r.ports ?? []).some((p: KObject) => p.port === 53)))
      for (const proto of ["udp", "tcp"])
        lines.push(`-A OUTPUT -p ${proto} --dport 53 -m owner --uid-owner 0 -j ACCEPT`);
    rules.forEach((rule, i) => {
      const ports = portSpecs(rule.ports);
      const peers: KObject[] | undefined = dir === "OUTPUT" ? rule.to : rule.from;
      if (!peers || peers.length === 0) {
        for (const p of ports) lines.push(`-A ${dir}${p} -j ACCEPT`);
        return;
      }
      peers.forEach((peer, j) => {
        if (peer.ipBlock) {
          if (!V4_CIDR.test(peer.ipBlock.cidr)) return;
          const name = `KS-${dir[0]}${i}-${j}`;
          chains.push(`:${name} - [0:0]`);
          for (const ex of peer.ipBlock.except ?? [])
            if (V4_CIDR.test(ex)) lines.push(`-A ${name} ${addr} ${ex} -j RETURN`);
          for (const p of ports) lines.push(`-A ${name} ${addr} ${peer.ipBlock.cidr}${p} -j ACCEPT`);
          lines.push(`-A ${dir} -j ${name}`);
        } else {
          for (const ip of peerIps(peer, rule.ns, store))
            for (const p of ports) lines.push(`-A ${dir} ${addr} ${ip}/32${p} -j ACCEPT`);
        }
      });
    });
    lines.push(`-A ${dir} -j REJECT --reject-with icmp-admin-prohibited`);
  };
  if (egress.length > 0) chain("OUTPUT", egressRules);
  if (ingress.length > 0) chain("INPUT", ingressRules);
  lines.splice(4, 0, ...chains);
  lines.push("COMMIT", "");
  return { noNetwork: false, rules: lines.join("\n") };
}

function portSpecs(ports: KObject[] | undefined): string[] {
  if (!ports || ports.length === 0) return [""];
  return ports.flatMap((p) => {
    const proto = String(p.protocol ?? "TCP").toLowerCase();
    if (p.port === undefined) return [` -p ${proto}`];
    if (typeof p.port !== "number") return []; // a named port: not resolved by the sim
    return [` -p ${proto} --dport ${p.port}${p.endPort ? `:${p.endPort}` : ""}`];
  });
}

function peerIps(peer: KObject, policyNs: string, store: Store): string[] {
  let namespaces: string[];
  if (peer.namespaceSelector) {
    const sel = selectorFromObject(peer.namespaceSelector);
    namespaces = store
      .list("namespaces")
      .filter((n) => sel(n.metadata.labels))
      .map((n) => n.metadata.name);
  } else namespaces = [policyNs];
  const podSel = peer.podSelector ? selectorFromObject(peer.podSelector) : () => true;
  return namespaces.flatMap((ns) =>
    store
      .list("pods", ns)
      .filter((p) => podSel(p.metadata.labels) && V4.test(p.status?.podIP ?? ""))
      .map((p) => p.status.podIP as string),
  );
}
