/**
 * An organisation's network default and ceiling: a create without `network` gets the default,
 * and no key can give a sandbox (at create or by a network update) a policy wider than the
 * ceiling. Order of width: "none" < an allow-list < "egress". An allow-list is within an
 * allow-list ceiling when each entry is one of the ceiling's entries or under one of its
 * wildcards (`a.example.com` and `*.a.example.com` are under `*.example.com`).
 */
import type { NetworkPolicy } from "../store/store.ts";

function entries(policy: NetworkPolicy): string[] | "none" | "egress" {
  if (typeof policy === "string") return policy === "none" ? "none" : "egress";
  return policy.allow.map((e) => e.toLowerCase());
}

function covered(entry: string, ceiling: string[]): boolean {
  return ceiling.some((c) => {
    if (c === entry) return true;
    if (!c.startsWith("*.")) return false;
    const suffix = c.slice(1); // ".example.com"
    const bare = entry.startsWith("*.") ? entry.slice(2) : entry;
    return bare.endsWith(suffix) && bare.length > suffix.length;
  });
}

export function withinCeiling(requested: NetworkPolicy, ceiling: NetworkPolicy): boolean {
  const want = entries(requested);
  const max = entries(ceiling);
  if (max === "egress" || want === "none") return true;
  if (max === "none" || want === "egress") return false;
  return want.every((e) => covered(e, max));
}

export function describePolicy(policy: NetworkPolicy): string {
  return typeof policy === "string" ? `"${policy}"` : `allow [${policy.allow.join(", ")}]`;
}
