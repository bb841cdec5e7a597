/**
 * Network allow-lists (`network: { allow: [...] }`): validation and preset expansion. The
 * matching itself happens in Kiln's egress proxy (packages/core/proxy/allow-proxy.mjs), which
 * receives the expanded rules; this module only decides what a rule may look like.
 */
import { isIP } from "node:net";
import { InvalidArgumentError } from "../errors.ts";
import { describe } from "../validate.ts";

/** A sandbox's network policy as the API takes it. */
export type NetworkPolicy = "none" | "egress" | { allow: string[] };

/**
 * Presets: the hosts each package manager needs for its public registry. A mirror of your own
 * is one more rule (its host name), not a preset.
 */
export const NETWORK_PRESETS: Record<string, readonly string[]> = {
  pypi: ["pypi.org", "files.pythonhosted.org"],
  npm: ["(npm registry host)", "registry.yarnpkg.com"],
  debian: ["(debian mirror host)", "security.debian.org", "*.(debian mirror host)"],
  github: [
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
  ],
};

/** At most this many rules after expansion (the proxy matches them linearly per connection). */
export const MAX_RULES = 512;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function isDomain(value: string): boolean {
  if (value.length > 253) return false;
  const labels = value.split(".");
  return labels.length >= 1 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1) ?? "");
}

function isCidr(value: string): boolean {
  const [address, bits, extra] = value.split("/");
  if (extra !== undefined || address === undefined || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  const family = isIP(address);
  const n = Number(bits);
  return (family === 4 && n <= 32) || (family === 6 && n <= 128);
}

/**
 * One rule, normalised (lower case, no trailing dot), or an error naming the field. Accepts a
 * domain (`pypi.org`), a wildcard (`*.example.org`: its subdomains, not example.org itself and not
 * evilexample.org), an IPv4/IPv6 address, a CIDR, or a preset name.
 */
export function normaliseRule(field: string, value: unknown): string[] {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(field, `must be a non-empty string, got ${describe(value)}`);
  }
  const v = value.trim().toLowerCase().replace(/\.$/, "");
  const preset = NETWORK_PRESETS[v];
  if (preset && Object.hasOwn(NETWORK_PRESETS, v)) return [...preset];
  if (isIP(v) || isCidr(v)) return [v];
  if (v.startsWith("*.") && isDomain(v.slice(2)) && v.slice(2).includes(".")) return [v];
  if (isDomain(v) && v.includes(".")) return [v];
  throw new InvalidArgumentError(
    field,
    `must be a domain ("pypi.org"), a wildcard ("*.example.org"), an IP, a CIDR or one of the presets ${Object.keys(
      NETWORK_PRESETS,
    )
      .map((p) => JSON.stringify(p))
      .join(", ")}, got ${describe(value)}`,
  );
}

/** The expanded, de-duplicated rules of an allow-list. */
export function expandAllowList(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, `must be an array of rules, got ${describe(value)}`);
  const rules = new Set<string>();
  value.forEach((item, i) => {
    for (const rule of normaliseRule(`${field}[${i}]`, item)) rules.add(rule);
  });
  if (rules.size > MAX_RULES) throw new InvalidArgumentError(field, `at most ${MAX_RULES} rules, got ${rules.size}`);
  return [...rules];
}

/** A validated policy: allow-lists expanded. */
export type ValidNetwork = "none" | "egress" | { allow: string[] };

export function validateNetwork(field: string, value: unknown): ValidNetwork {
  if (value === undefined || value === "none") return "none";
  if (value === "egress") return "egress";
  if (typeof value === "object" && value !== null && !Array.isArray(value) && "allow" in value) {
    const extra = Object.keys(value).filter((k) => k !== "allow");
    if (extra.length > 0) throw new InvalidArgumentError(field, `unknown key ${JSON.stringify(extra[0])}`);
    return { allow: expandAllowList(`${field}.allow`, (value as { allow: unknown }).allow) };
  }
  throw new InvalidArgumentError(field, `must be "none", "egress" or { allow: [...] }, got ${describe(value)}`);
}
