/**
 * Network allow-lists (`network: { allow: [...] }`): validation and preset expansion. The
 * matching itself happens in Kiln's egress proxy (packages/core/proxy/allow-proxy.mjs), which
 * receives the expanded rules; this module only decides what a rule may look like.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { InvalidArgumentError } from "../errors.ts";
import { describe } from "../validate.ts";

/** A sandbox's network policy as the API takes it. */
export type NetworkPolicy = "none" | "egress" | { allow: string[] };

/**
 * Presets: the hosts each package manager needs. "npm" and "debian" are the registries this
 * machine's own npm and apt are configured with (`npm config get registry`, the apt sources), read
 * once when a preset is first used, so a site with its own mirror gets its mirror; "pypi" and
 * "github" are the public services. Another registry is one more rule (its host name).
 */
export const NETWORK_PRESETS: Record<string, readonly string[]> = {
  pypi: ["pypi.org", "files.pythonhosted.org"],
  get npm() {
    return configured("npm", npmRegistryHosts);
  },
  get debian() {
    return configured("debian", aptSourceHosts);
  },
  github: [
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
  ],
};

const configuredHosts = new Map<string, readonly string[]>();

/** A preset read from this machine's configuration (cached); [] when there is none. */
function configured(name: string, read: () => string[]): readonly string[] {
  let hosts = configuredHosts.get(name);
  if (!hosts) {
    try {
      hosts = [...new Set(read())];
    } catch {
      hosts = [];
    }
    configuredHosts.set(name, hosts);
  }
  return hosts;
}

/** The host of the registry this machine's npm uses (its own default when nothing is set). */
function npmRegistryHosts(): string[] {
  const registry = execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8", timeout: 10_000 }).trim();
  return [new URL(registry).hostname];
}

/** The hosts of this machine's apt sources (deb822 `.sources` files and `sources.list`). */
function aptSourceHosts(): string[] {
  const dir = "/etc/apt/sources.list.d";
  const files = ["/etc/apt/sources.list", ...readdirSync(dir).map((f) => `${dir}/${f}`)];
  const hosts: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const match of text.matchAll(/https?:\/\/([^/\s:]+)/g)) if (match[1]) hosts.push(match[1].toLowerCase());
  }
  return hosts;
}

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
  if (Object.hasOwn(NETWORK_PRESETS, v)) {
    const preset = NETWORK_PRESETS[v] ?? [];
    if (preset.length === 0) {
      throw new InvalidArgumentError(
        field,
        `the preset "${v}" names the registry this machine's ${v === "npm" ? "npm" : "apt"} is configured with, and none was found here: list the registry's host name instead`,
      );
    }
    return [...preset];
  }
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
