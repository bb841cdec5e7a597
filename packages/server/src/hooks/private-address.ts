/**
 * Webhook and admission URLs must not lead to loopback, private or link-local addresses (the
 * server's own network) unless KILN_ALLOW_PRIVATE_HOOKS=true. The ranges are the ones sandbox
 * egress refuses (core's EGRESS_BLOCKED_V4/V6): every special-purpose block that is not globally
 * reachable, and for IPv6 everything outside global unicast 2000::/3.
 */
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

const BLOCKED = new BlockList();
for (const cidr of [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
]) {
  const [net, bits] = cidr.split("/") as [string, string];
  BLOCKED.addSubnet(net, Number(bits), "ipv4");
}
for (const cidr of ["2001::/23", "2001:db8::/32", "2002::/16"]) {
  const [net, bits] = cidr.split("/") as [string, string];
  BLOCKED.addSubnet(net, Number(bits), "ipv6");
}
const GLOBAL_V6 = new BlockList();
GLOBAL_V6.addSubnet("2000::", 3, "ipv6");

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return BLOCKED.check(address, "ipv4");
  if (family === 6) {
    // IPv4-mapped (::ffff:a.b.c.d) is judged as the IPv4 address it carries.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return BLOCKED.check(mapped[1], "ipv4");
    return !GLOBAL_V6.check(address, "ipv6") || BLOCKED.check(address, "ipv6");
  }
  return true;
}

/**
 * Why `url` may not be called (not http(s), or it resolves to a private address), or undefined
 * when it may. Every address the name resolves to is checked.
 */
export async function refuseHookUrl(url: string, allowPrivate: boolean): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "the URL must be http:// or https://";
  if (parsed.username !== "" || parsed.password !== "") return "the URL must not carry credentials";
  if (allowPrivate) return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return `the host "${host}" does not resolve`;
  }
  const bad = addresses.find(isPrivateAddress);
  if (bad !== undefined) {
    return `the URL resolves to ${bad}, a loopback, private or link-local address (set KILN_ALLOW_PRIVATE_HOOKS=true to allow it)`;
  }
  return undefined;
}
