// Kiln's egress proxy for allow-list sandboxes (`network: { allow: [...] }`). Runs with the
// runtime image's Node in its own container (see src/engine/docker/allow.ts), on an internal
// network it shares only with the network holders of allow-list sandboxes, and on Kiln's egress
// bridge for the way out. No dependencies: this file is the whole program.
//
// Why our own and not a library (or squid/tinyproxy): the decisions that matter here are not
// generic proxy features. The proxy must (1) match per-sandbox rules keyed by the client's
// address, rules that change while it runs; (2) resolve names itself and dial exactly the address
// it checked against the special-purpose ranges (no DNS rebinding window between check and
// connect: generic proxies and agents resolve again at connect time); (3) read the TLS ClientHello
// of a CONNECT tunnel and refuse one whose SNI is not the CONNECT host; (4) answer a refusal with
// a one-line reason naming the rule to add; (5) log every decision per sandbox. Node's http and
// net modules give the protocol parts; what remains is those rules, about 300 lines we can read
// in one sitting, and nothing to install in the image.
//
// Configuration: KILN_PROXY_CONFIG (JSON) = { port, dataDir, blockedV4[], blockedV6[], globalV6,
// deny[] (the engine host's own addresses), trust[] (CIDRs exempt from the address check: tests
// only), hosts{} (name -> address, consulted before DNS: tests only), resolver (a DNS server
// address instead of the system resolver: tests only) }.
// State, in dataDir (the container's writable layer, so it survives a restart of the container):
//   policies/<client address>.json  {"holder": "<id>", "allow": ["pypi.org", ...]}  written by Kiln
//   logs/<holder>.jsonl              one decision a line, newest last, bounded

import { promises as dns } from "node:dns";
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { BlockList, connect, isIP } from "node:net";

const config = JSON.parse(process.env.KILN_PROXY_CONFIG ?? "{}");
const PORT = config.port ?? 3128;
const DATA = config.dataDir ?? "/var/lib/kiln-proxy";
const LOG_MAX_BYTES = 256 * 1024;
const LOG_KEEP_LINES = 500;
const CONNECT_TIMEOUT_MS = 10_000;
const HELLO_TIMEOUT_MS = 10_000;
const HELLO_MAX_BYTES = 64 * 1024;

mkdirSync(`${DATA}/logs`, { recursive: true });

/** Builds a BlockList from CIDRs / addresses of both families. */
function blockList(cidrs) {
  const list = new BlockList();
  for (const cidr of cidrs ?? []) {
    const [address, bits] = cidr.split("/");
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

const blocked = blockList([...(config.blockedV4 ?? []), ...(config.blockedV6 ?? []), ...(config.deny ?? [])]);
const globalV6 = blockList([config.globalV6 ?? "2000::/3"]);
const trusted = blockList(config.trust ?? []);
const hosts = config.hosts ?? {};
const resolver = config.resolver ? new dns.Resolver() : undefined;
resolver?.setServers([config.resolver]);

/** Why `address` is refused after resolution, or undefined when it may be dialled. */
function refusedAddress(address) {
  const family = isIP(address) === 6 ? "ipv6" : "ipv4";
  if (trusted.check(address, family)) return undefined;
  if (family === "ipv6" && !globalV6.check(address, "ipv6")) return "not a global unicast IPv6 address";
  if (blocked.check(address, family)) {
    return "a loopback, private, link-local, metadata, CGNAT, ULA or other special-purpose address (or the engine's host)";
  }
  return undefined;
}

function policyFor(client) {
  try {
    return JSON.parse(readFileSync(`${DATA}/policies/${client.replace(/[^0-9a-fA-F.:]/g, "")}.json`, "utf8"));
  } catch {
    return undefined;
  }
}

function ipMatches(ip, rule) {
  const [address, bits] = rule.split("/");
  const family = isIP(ip);
  if (family === 0 || isIP(address) !== family) return false;
  const list = new BlockList();
  const f = family === 6 ? "ipv6" : "ipv4";
  if (bits === undefined) list.addAddress(address, f);
  else list.addSubnet(address, Number(bits), f);
  return list.check(ip, f);
}

/** The rule that lets `host` through, or undefined. Wildcards match subdomains only. */
function matchingRule(host, rules) {
  const literal = isIP(host) !== 0;
  for (const rule of rules) {
    if (literal) {
      if (isIP(rule.split("/")[0] ?? "") !== 0 && ipMatches(host, rule)) return rule;
    } else if (rule.startsWith("*.")) {
      if (host.endsWith(rule.slice(1)) && host.length > rule.length - 1) return rule;
    } else if (host === rule) return rule;
  }
  return undefined;
}

/** What to add to the allow-list for `host`. */
function suggestion(host) {
  if (isIP(host) !== 0) return `"${host}"`;
  const parts = host.split(".");
  return parts.length > 2 ? `"${host}" (or "*.${parts.slice(1).join(".")}")` : `"${host}"`;
}

async function resolve(host) {
  if (isIP(host) !== 0) return [host];
  if (Object.hasOwn(hosts, host)) return [hosts[host]];
  if (resolver) {
    const all = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const found = all.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    if (found.length === 0) throw new Error(`no address for ${host}`);
    return found;
  }
  return (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

/**
 * The decision for `host:port` from `client`: { allowed, reason, address? }. Resolution happens
 * here, once; an allowed decision carries the one address that was checked, which is the one
 * dialled.
 */
async function decide(client, host, port) {
  const policy = policyFor(client);
  if (!policy?.holder) {
    return {
      allowed: false,
      reason: "kiln: this sandbox has no network policy at Kiln's proxy (set one with setNetwork)",
    };
  }
  if (policy.none) {
    return {
      allowed: false,
      holder: policy.holder,
      reason: 'kiln: this sandbox\'s network is "none"; setNetwork({ allow: [...] }) opens it',
    };
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return { allowed: false, reason: `kiln: bad port in request for ${host}`, holder: policy.holder };
  }
  const rule = matchingRule(host, policy.allow ?? []);
  if (!rule) {
    return {
      allowed: false,
      holder: policy.holder,
      reason: `kiln: ${host} is not on this sandbox's network allow-list; add ${suggestion(host)} to network.allow`,
    };
  }
  let addresses;
  try {
    addresses = await resolve(host);
  } catch (err) {
    return {
      allowed: false,
      holder: policy.holder,
      reason: `kiln: ${host} did not resolve (${err.code ?? err.message})`,
    };
  }
  // Prefer IPv4 (the proxy's bridge has no IPv6); the first address that passes is the one dialled.
  addresses.sort((a, b) => isIP(a) - isIP(b));
  let why;
  for (const address of addresses) {
    const refused = refusedAddress(address);
    if (!refused) return { allowed: true, holder: policy.holder, address, reason: `allowed by "${rule}"` };
    why ??= `kiln: ${host} resolves to ${address}, ${refused}; Kiln's proxy never connects there, whatever the allow-list says`;
  }
  return { allowed: false, holder: policy.holder, reason: why };
}

function log(holder, host, port, allowed, reason) {
  if (!holder || !/^[0-9a-f]{12,64}$/.test(holder)) return;
  const file = `${DATA}/logs/${holder}.jsonl`;
  const line = `${JSON.stringify({ at: new Date().toISOString(), host, port, allowed, reason })}\n`;
  try {
    appendFileSync(file, line);
    if (statSync(file).size > LOG_MAX_BYTES) {
      const lines = readFileSync(file, "utf8").trimEnd().split("\n");
      writeFileSync(file, `${lines.slice(-LOG_KEEP_LINES).join("\n")}\n`);
    }
  } catch (err) {
    console.error(`log ${holder}: ${err.message}`);
  }
}

function clientAddress(socket) {
  return (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

/** "host:port" / "[v6]:port" -> { host, port }. */
function splitAuthority(authority, defaultPort) {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return undefined;
  return { host: m[1].toLowerCase().replace(/\.$/, ""), port: m[2] === undefined ? defaultPort : Number(m[2]) };
}

/** A header value can carry only visible ASCII: anything else becomes "?". */
function headerSafe(text) {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

function refuse(socket, status, reason) {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Gateway"}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Kiln-Reason: ${headerSafe(reason)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The Host header of the first HTTP request in a non-TLS tunnel (Node's fetch tunnels plain
 * http:// URLs through CONNECT too): { host } / { incomplete: true } / { error }.
 */
export function parseHttpHost(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return buf.length < HELLO_MAX_BYTES ? { incomplete: true } : { error: "a request head too large" };
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  if (!/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(lines[0] ?? "")) return { error: "neither TLS nor HTTP" };
  const hostLine = lines.slice(1).find((l) => /^host:/i.test(l));
  if (!hostLine) return { error: "an HTTP request without a Host header" };
  const authority = splitAuthority(hostLine.slice(5).trim(), 0);
  return authority ? { host: authority.host } : { error: "a bad Host header" };
}

/**
 * The server name of a TLS ClientHello in `buf`: { sni } (undefined when the hello has none),
 * { incomplete: true } when more bytes are needed, or { error } when this is not TLS.
 */
export function parseClientHello(buf) {
  // Reassemble the handshake message from consecutive handshake records.
  let handshake = Buffer.alloc(0);
  let offset = 0;
  for (;;) {
    if (buf.length < offset + 5) return { incomplete: true };
    if (buf[offset] !== 0x16) return { error: "not a TLS handshake" };
    const length = buf.readUInt16BE(offset + 3);
    if (buf.length < offset + 5 + length) return { incomplete: true };
    handshake = Buffer.concat([handshake, buf.subarray(offset + 5, offset + 5 + length)]);
    offset += 5 + length;
    if (handshake.length >= 4) {
      if (handshake[0] !== 1) return { error: "not a ClientHello" };
      const total = handshake.readUIntBE(1, 3);
      if (handshake.length >= 4 + total) break;
    }
  }
  try {
    const h = handshake.subarray(4);
    let p = 2 + 32; // version, random
    p += 1 + h[p]; // session id
    p += 2 + h.readUInt16BE(p); // cipher suites
    p += 1 + h[p]; // compression methods
    if (p >= h.length) return { sni: undefined };
    const end = p + 2 + h.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = h.readUInt16BE(p);
      const len = h.readUInt16BE(p + 2);
      p += 4;
      if (type === 0) {
        let q = p + 2;
        while (q + 3 <= p + len) {
          const nameType = h[q];
          const nameLen = h.readUInt16BE(q + 1);
          if (nameType === 0)
            return {
              sni: h
                .subarray(q + 3, q + 3 + nameLen)
                .toString("latin1")
                .toLowerCase(),
            };
          q += 3 + nameLen;
        }
        return { sni: undefined };
      }
      p += len;
    }
    return { sni: undefined };
  } catch {
    return { error: "a malformed ClientHello" };
  }
}

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"];

const server = createServer(async (req, res) => {
  // Plain HTTP through the proxy: the request line carries an absolute URL.
  const client = clientAddress(req.socket);
  let url;
  try {
    url = new URL(req.url ?? "");
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "http:") {
    res
      .writeHead(400, { "Content-Type": "text/plain" })
      .end("kiln: this is an HTTP proxy; send absolute http:// URLs or CONNECT\n");
    return;
  }
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.$/, "");
  const port = url.port === "" ? 80 : Number(url.port);
  const decision = await decide(client, host, port);
  log(decision.holder, host, port, decision.allowed, decision.reason);
  if (!decision.allowed) {
    res
      .writeHead(403, { "Content-Type": "text/plain; charset=utf-8", "X-Kiln-Reason": headerSafe(decision.reason) })
      .end(`${decision.reason}\n`);
    return;
  }
  const headers = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  // The Host header is the checked name: no fronting another site behind an allowed address.
  headers.host = url.port === "" ? url.hostname : `${url.hostname}:${url.port}`;
  const upstream = httpRequest({
    host: decision.address,
    port,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers,
    setHost: false,
    agent: false,
    timeout: CONNECT_TIMEOUT_MS,
  });
  upstream.on("response", (up) => {
    const out = { ...up.headers };
    for (const h of HOP_BY_HOP) delete out[h];
    res.writeHead(up.statusCode ?? 502, out);
    up.pipe(res);
  });
  upstream.on("timeout", () => upstream.destroy(new Error("timed out")));
  upstream.on("error", (err) => {
    if (!res.headersSent) {
      res.writeHead(502, { "Content-Type": "text/plain" }).end(`kiln: ${host}:${port} failed: ${err.message}\n`);
    } else res.destroy();
  });
  req.pipe(upstream);
});

server.on("connect", async (req, socket, head) => {
  socket.on("error", () => {});
  const client = clientAddress(socket);
  const target = splitAuthority(req.url ?? "", 443);
  if (!target) return refuse(socket, 403, `kiln: bad CONNECT target ${JSON.stringify(req.url)}`);
  const { host, port } = target;
  const decision = await decide(client, host, port);
  if (!decision.allowed) {
    log(decision.holder, host, port, false, decision.reason);
    return refuse(socket, 403, decision.reason);
  }
  const upstream = connect({ host: decision.address, port, timeout: CONNECT_TIMEOUT_MS });
  upstream.on("error", (err) => {
    log(decision.holder, host, port, false, `kiln: ${host}:${port} (${decision.address}) failed: ${err.message}`);
    if (socket.writable) refuse(socket, 502, `kiln: ${host}:${port} failed: ${err.message}`);
    socket.destroy();
  });
  upstream.on("timeout", () => upstream.destroy(new Error("connect timed out")));
  upstream.once("connect", () => {
    upstream.setTimeout(0);
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    // Hold the client's first bytes until its ClientHello names the CONNECT host.
    let hello = Buffer.from(head ?? []);
    let done = false;
    const timer = setTimeout(() => finish({ error: "no TLS ClientHello in time" }), HELLO_TIMEOUT_MS);
    const onData = (chunk) => {
      if (done) return;
      hello = Buffer.concat([hello, chunk]);
      const parsed = hello[0] === 0x16 ? parseClientHello(hello) : parseHttpHost(hello);
      if (parsed.incomplete && hello.length < HELLO_MAX_BYTES) return;
      finish(parsed.incomplete ? { error: "a ClientHello too large" } : parsed);
    };
    const finish = (parsed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onData);
      let refusal;
      if (parsed.error) refusal = `kiln: CONNECT tunnels carry TLS or HTTP only (got ${parsed.error})`;
      else if (parsed.host !== undefined) {
        // Plain HTTP in the tunnel: its Host header must name the CONNECT host, as SNI would.
        if (parsed.host !== host) refusal = `kiln: HTTP Host "${parsed.host}" does not match CONNECT host "${host}"`;
      } else if (parsed.sni === undefined && isIP(host) === 0) refusal = `kiln: TLS without a server name to ${host}`;
      else if (parsed.sni !== undefined && parsed.sni !== host) {
        refusal = `kiln: TLS server name "${parsed.sni}" does not match CONNECT host "${host}"`;
      }
      if (refusal) {
        log(decision.holder, host, port, false, refusal);
        socket.destroy();
        upstream.destroy();
        return;
      }
      log(decision.holder, host, port, true, decision.reason);
      upstream.write(hello);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
    };
    socket.on("data", onData);
    if (hello.length > 0) onData(Buffer.alloc(0));
  });
});

server.on("clientError", (_err, socket) => socket.destroy());
// One proxy serves every allow-list sandbox: a request that trips a bug must not take it down
// for the others. Each connection's state is its own, so logging and carrying on is safe.
process.on("uncaughtException", (err) => console.error(`uncaught: ${err?.stack ?? err}`));
process.on("unhandledRejection", (err) => console.error(`unhandled: ${err?.stack ?? err}`));
server.listen(PORT, "0.0.0.0", () => {
  console.log("kiln-proxy-ready");
});
