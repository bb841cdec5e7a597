/**
 * The network of allow-list sandboxes (`network: { allow: [...] }`) on Docker.
 *
 * An allow-list sandbox lives, like an egress sandbox, in the namespace of its own network holder
 * (egress.ts), filtered before the sandbox starts. The holder is not on the egress bridge but on
 * `kiln-allow`, an **internal** Docker network (no gateway, no route out), at a fixed address, and
 * its filter lets exactly one thing out: TCP to Kiln's egress proxy. The engine's resolver
 * (127.0.0.11) is rejected too, so no DNS query leaves the sandbox, and no name resolves in it.
 *
 * The proxy (packages/core/proxy/allow-proxy.mjs) is one long-lived container per configuration,
 * `kiln-proxy-<hash>` (hash of its program, configuration and image), on `kiln-allow` at a fixed
 * address and on the egress bridge for the way out (so the host guard's INPUT rule shuts the
 * engine's host off from it too). Any Kiln process with the same configuration finds the same
 * container by name; the engine restarts it if it dies (`RestartPolicy: always`; meanwhile nothing
 * listens at its address and every connection fails: closed), and every create, start and
 * setNetwork of an allow-list sandbox starts it again if it was stopped. The sweeper removes it
 * once no holder refers to it.
 *
 * A sandbox's rules live in the proxy's writable layer, `policies/<holder address>.json`, written
 * by Kiln through the engine's archive API before the sandbox first starts and on every
 * setNetwork; the proxy reads them on every connection (so a change applies to the next one), and
 * appends each decision to `logs/<holder id>.jsonl`.
 */
import { createHash, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { BlockList } from "node:net";
import { Readable } from "node:stream";
import type Dockerode from "dockerode";
import { extract, pack } from "tar-stream";
import { EngineError } from "../../errors.ts";
import type { NetworkDecision } from "../../types.ts";
import {
  AttachedOutput,
  EGRESS_BLOCKED_V4,
  EGRESS_BLOCKED_V6,
  EGRESS_GLOBAL_V6,
  EGRESS_NETWORK,
  type EgressNetworks,
  type HolderVariant,
} from "./egress.ts";

/** The internal network of allow-list holders and the proxy. */
export const ALLOW_NETWORK = "kiln-allow";
export const PROXY_PORT = 3128;
export const PROXY_READY_LINE = "kiln-proxy-ready";
const DATA_DIR = "/var/lib/kiln-proxy";
/** The proxy runs as nobody; its data directory is made for it before its first start. */
const PROXY_UID = 65534;

export const ALLOW_LABEL = {
  /** On the proxy container: the hash naming it. */
  proxy: "kiln.proxy",
  /** On an allow-list holder: the name of its proxy container. */
  proxyOf: "kiln.allow-proxy",
  /** On an allow-list holder: its fixed address on kiln-allow. */
  address: "kiln.allow-address",
  /** On an allow-list sandbox: "1" (its holder's way out is the proxy). */
  sandbox: "kiln.allow-list",
} as const;

/** A proxy with no holder referring to it is removed once it has been up this long. */
export const PROXY_IDLE_GRACE_MS = 2 * 60_000;
const PROXY_START_TIMEOUT_MS = 30_000;

/**
 * Test-only settings of the proxy (a proxy with any of them is a different container from the
 * default one, by its hash). Production leaves them unset.
 */
export interface AllowProxyOptions {
  /** Docker networks the proxy also joins (test hosts live there). */
  networks?: string[];
  /** CIDRs exempt from the refusal of private and special-purpose addresses. */
  trust?: string[];
  /** Names answered before DNS. */
  hosts?: Record<string, string>;
  /** A DNS server address the proxy asks instead of the engine's resolver. */
  resolver?: string;
}

let proxySource: string | undefined;
/** The proxy's program, shipped beside src/ and dist/ (the package's `proxy/` folder). */
function readProxySource(): string {
  proxySource ??= readFileSync(new URL("../../../proxy/allow-proxy.mjs", import.meta.url), "utf8");
  return proxySource;
}

/**
 * The allow-list holder's entry point: as root with NET_ADMIN, reject the engine's resolver,
 * allow loopback and TCP to the proxy's port at the proxy's address, reject everything else in
 * both families; then become nobody like every holder.
 */
export function allowHolderScript(proxyAddress: string, port = PROXY_PORT): string {
  const v4 = [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    // The engine's embedded resolver is on loopback; no query may reach it (DNS carries data).
    "-A OUTPUT -d 127.0.0.11 -j REJECT",
    "-A OUTPUT -o lo -j ACCEPT",
    `-A OUTPUT -d ${proxyAddress}/32 -p tcp --dport ${port} -j ACCEPT`,
    "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
    "-A OUTPUT -j REJECT",
    "COMMIT",
    "",
  ].join("\n");
  const v6 = ["*filter", ":OUTPUT ACCEPT [0:0]", "-A OUTPUT -o lo -j ACCEPT", "-A OUTPUT -j REJECT", "COMMIT", ""].join(
    "\n",
  );
  return [
    "set -e",
    `printf '%s' '${v4}' | iptables-restore`,
    `if ip6tables -L OUTPUT >/dev/null 2>&1; then printf '%s' '${v6}' | ip6tables-restore; fi`,
    "echo kiln-network-ready",
    "exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all sleep infinity",
  ].join("\n");
}

/** The environment that points ordinary tools at the proxy. */
export function proxyEnv(proxyUrl: string): Record<string, string> {
  const noProxy = "localhost,127.0.0.1,::1";
  return {
    HTTP_PROXY: proxyUrl,
    HTTPS_PROXY: proxyUrl,
    http_proxy: proxyUrl,
    https_proxy: proxyUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    // Node's fetch and http honour the variables above only with this (Node 24).
    NODE_USE_ENV_PROXY: "1",
    PIP_PROXY: proxyUrl,
    npm_config_proxy: proxyUrl,
    npm_config_https_proxy: proxyUrl,
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: "http.proxy",
    GIT_CONFIG_VALUE_0: proxyUrl,
  };
}

interface HttpError {
  statusCode?: number;
}
const statusOf = (err: unknown) => (err as HttpError).statusCode;

/**
 * The proxy's decision log (JSON lines, the newest last) as decisions, the last `limit` of them;
 * a line cut by the log's rotation is skipped. Also read by engines that run the proxy themselves.
 */
export function parseNetworkLog(text: string, limit: number): NetworkDecision[] {
  const out: NetworkDecision[] = [];
  for (const line of text.split("\n").slice(-limit - 1)) {
    if (!line) continue;
    try {
      const d = JSON.parse(line) as NetworkDecision;
      out.push({ at: d.at, host: d.host, port: d.port, allowed: d.allowed, reason: d.reason });
    } catch {
      // a line cut by the rotation
    }
  }
  return out.slice(-limit);
}

function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
}
function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/**
 * The host's addresses and subnets that the blocked ranges do not already cover, sorted. Only
 * those change what the proxy refuses; the rest (Docker's bridges, in private ranges) come and go
 * as networks are made and removed, and would give a second Kiln a differently named proxy for
 * the same protection.
 */
export function notBlocked(cidrs: string[]): string[] {
  const v4 = EGRESS_BLOCKED_V4.map((c) => {
    const [address = "", prefix = "32"] = c.split("/");
    return { net: ipToInt(address), prefix: Number(prefix) };
  });
  const global6 = new BlockList();
  const [globalAddress = "", globalPrefix = "3"] = EGRESS_GLOBAL_V6.split("/");
  global6.addSubnet(globalAddress, Number(globalPrefix), "ipv6");
  const v6 = new BlockList();
  for (const c of EGRESS_BLOCKED_V6) {
    const [address = "", prefix = "128"] = c.split("/");
    v6.addSubnet(address, Number(prefix), "ipv6");
  }
  const covered = (cidr: string): boolean => {
    const [address = "", prefix = ""] = cidr.split("/");
    // IPv6: only global unicast (EGRESS_GLOBAL_V6) is reachable at all, minus the blocked ranges.
    if (address.includes(":"))
      return prefix === "128" && (!global6.check(address, "ipv6") || v6.check(address, "ipv6"));
    const n = ipToInt(address);
    const len = Number(prefix);
    return v4.some((b) => len >= b.prefix && (b.prefix === 0 || (n ^ b.net) >>> (32 - b.prefix) === 0));
  };
  return [...new Set(cidrs)].filter((c) => !covered(c)).sort();
}

/** Subnets tried for kiln-allow, in order, until the engine accepts one that overlaps nothing. */
function candidateSubnets(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) out.push(`10.223.${i * 4}.0/22`);
  return out;
}

/** The proxy, the kiln-allow network and allow-list holders. A DockerEngine owns one. */
export class AllowNetworks {
  readonly #docker: Dockerode;
  readonly #egress: EgressNetworks;
  readonly #options: AllowProxyOptions;
  readonly #fail: (err: unknown, what: string) => never;
  #subnet?: Promise<string>;
  #ensuring?: Promise<Proxy>;
  readonly #reserved = new Set<string>();

  constructor(
    docker: Dockerode,
    egress: EgressNetworks,
    options: AllowProxyOptions,
    fail: (err: unknown, what: string) => never,
  ) {
    this.#docker = docker;
    this.#egress = egress;
    this.#options = options;
    this.#fail = fail;
  }

  /** kiln-allow exists (made once, by whichever process comes first); its subnet. */
  subnet(): Promise<string> {
    this.#subnet ??= this.#network().catch((err) => {
      this.#subnet = undefined;
      throw err;
    });
    return this.#subnet;
  }

  async #network(): Promise<string> {
    const find = async () => {
      const found = await this.#docker.listNetworks({ filters: { name: [ALLOW_NETWORK] } });
      const net = found.find((n) => n.Name === ALLOW_NETWORK);
      return net?.IPAM?.Config?.[0]?.Subnet;
    };
    try {
      const existing = await find();
      if (existing) return existing;
      for (const subnet of candidateSubnets()) {
        try {
          await this.#docker.createNetwork({
            Name: ALLOW_NETWORK,
            Driver: "bridge",
            Internal: true,
            Labels: { "kiln.network": "allow" },
            IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
          });
          return subnet;
        } catch (err) {
          if (statusOf(err) === 409) {
            const made = await find(); // another process made it first
            if (made) return made;
          }
          // an overlapping subnet: try the next
        }
      }
      throw new EngineError(`Could not create the ${ALLOW_NETWORK} network: every candidate subnet overlaps another`);
    } catch (err) {
      return this.#fail(err, `create the ${ALLOW_NETWORK} network`);
    }
  }

  async #config(): Promise<{ name: string; address: string; env: string; image: string; source: string }> {
    const [subnet, host, image] = await Promise.all([this.subnet(), this.#egress.ready(), this.#egress.helperImage()]);
    const config = {
      port: PROXY_PORT,
      dataDir: DATA_DIR,
      blockedV4: EGRESS_BLOCKED_V4,
      blockedV6: EGRESS_BLOCKED_V6,
      globalV6: EGRESS_GLOBAL_V6,
      deny: notBlocked([...host.v4, ...host.v6]),
      trust: this.#options.trust ?? [],
      hosts: this.#options.hosts ?? {},
      ...(this.#options.resolver ? { resolver: this.#options.resolver } : {}),
    };
    const env = JSON.stringify(config);
    const hash = createHash("sha256")
      .update(readProxySource())
      .update(env)
      .update(image)
      .update(JSON.stringify(this.#options.networks ?? []))
      .digest("hex")
      .slice(0, 12);
    // Proxies sit at .2 to .201 of the subnet (by hash); holders above .255.
    const base = ipToInt(subnet.split("/")[0] ?? "");
    const address = intToIp(base + 2 + (Number.parseInt(hash.slice(0, 8), 16) % 200));
    return { name: `kiln-proxy-${hash}`, address, env, image, source: readProxySource() };
  }

  /**
   * The proxy is running (created and started if needed, by this or any other process); its
   * container name and address. Concurrent callers share one attempt.
   */
  ensure(): Promise<Proxy> {
    this.#ensuring ??= this.#ensure().finally(() => {
      this.#ensuring = undefined;
    });
    return this.#ensuring;
  }

  async #ensure(): Promise<Proxy> {
    const { name, address, env, image, source } = await this.#config();
    const proxy: Proxy = { name, address, url: `http://${address}:${PROXY_PORT}` };
    const container = this.#docker.getContainer(name);
    let state: Dockerode.ContainerInspectInfo["State"] | undefined;
    try {
      state = (await container.inspect()).State;
    } catch (err) {
      if (statusOf(err) !== 404) return this.#fail(err, "inspect Kiln's egress proxy");
    }
    if (state === undefined) {
      try {
        await this.#create(name, address, env, image, source);
      } catch (err) {
        if (statusOf(err) !== 409) return this.#fail(err, "create Kiln's egress proxy");
        // another process made it first
      }
      state = (await container.inspect()).State;
    }
    if (state.Running && !state.Restarting) return proxy;
    if (state.Restarting) {
      // The engine is bringing it back after a crash: wait for it.
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const s = (await container.inspect()).State;
        if (s.Running && !s.Restarting) return proxy;
      }
    }
    const output = new AttachedOutput(await container.attach({ stream: true, stdout: true, stderr: true }));
    try {
      await container.start().catch((err) => {
        if (statusOf(err) !== 304) throw err; // 304: another process started it meanwhile
      });
      await output.line(PROXY_READY_LINE, PROXY_START_TIMEOUT_MS).catch(async (err) => {
        if ((await container.inspect()).State.Running) return; // started by another process: its line went there
        throw err;
      });
    } catch (err) {
      return this.#fail(err, "start Kiln's egress proxy");
    } finally {
      output.close();
    }
    return proxy;
  }

  async #create(name: string, address: string, env: string, image: string, source: string): Promise<void> {
    const memory = 256 * 1024 * 1024;
    const created = await this.#docker.createContainer({
      name,
      Image: image,
      User: `${PROXY_UID}:${PROXY_UID}`,
      Entrypoint: ["node", "--input-type=module", "-e", source],
      Cmd: [],
      Env: [`KILN_PROXY_CONFIG=${env}`],
      Labels: { [ALLOW_LABEL.proxy]: name.replace("kiln-proxy-", "") },
      AttachStdout: true,
      AttachStderr: true,
      NetworkingConfig: { EndpointsConfig: { [ALLOW_NETWORK]: { IPAMConfig: { IPv4Address: address } } } },
      HostConfig: {
        NetworkMode: ALLOW_NETWORK,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges:true"],
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: 128,
        NanoCpus: 1_000_000_000,
        IpcMode: "private",
        // Restarted by the engine if it dies; a deliberate stop is undone by Kiln's next ensure().
        RestartPolicy: { Name: "always" },
        LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
      },
    });
    try {
      // Its data directory, owned by the proxy's user, in the writable layer (survives restarts).
      const archive = pack();
      const mtime = new Date();
      for (const dir of ["kiln-proxy", "kiln-proxy/policies", "kiln-proxy/logs"]) {
        archive.entry({ name: dir, type: "directory", mode: 0o755, uid: PROXY_UID, gid: PROXY_UID, mtime });
      }
      archive.finalize();
      await created.putArchive(Readable.from(archive), { path: "/var/lib" });
      // The way out: the egress bridge (the host guard covers it); test networks if configured.
      for (const network of [EGRESS_NETWORK, ...(this.#options.networks ?? [])]) {
        await this.#docker.getNetwork(network).connect({ Container: created.id });
      }
    } catch (err) {
      await created.remove({ force: true }).catch(() => {});
      throw err;
    }
  }

  /** A stopped holder for a new allow-list sandbox at a free address; its id, address and proxy. */
  async createHolder(): Promise<{ holder: string; address: string; proxy: Proxy }> {
    const proxy = await this.ensure();
    const subnet = await this.subnet();
    const used = new Set(this.#reserved);
    try {
      for (const c of await this.#docker.listContainers({ all: true, filters: { label: [ALLOW_LABEL.address] } })) {
        const a = c.Labels[ALLOW_LABEL.address];
        if (a) used.add(a);
      }
    } catch (err) {
      return this.#fail(err, "list allow-list holders");
    }
    const base = ipToInt(subnet.split("/")[0] ?? "");
    const size = 2 ** (32 - Number(subnet.split("/")[1]));
    let address: string | undefined;
    for (let i = 0; i < 64 && address === undefined; i++) {
      const candidate = intToIp(base + 256 + randomInt(1, size - 257));
      if (!used.has(candidate)) address = candidate;
    }
    if (address === undefined) throw new EngineError(`No free address on ${ALLOW_NETWORK} (${subnet})`);
    this.#reserved.add(address);
    try {
      const variant: HolderVariant = {
        network: ALLOW_NETWORK,
        address,
        script: allowHolderScript(proxy.address),
        labels: { [ALLOW_LABEL.proxyOf]: proxy.name, [ALLOW_LABEL.address]: address },
      };
      const holder = await this.#egress.createHolder(variant);
      return { holder, address, proxy };
    } finally {
      this.#reserved.delete(address);
    }
  }

  /** The holder's proxy name and address (from its labels), or undefined when it is no allow-list holder. */
  async holderInfo(holder: string): Promise<{ proxy: string; address: string } | undefined> {
    try {
      const labels = (await this.#docker.getContainer(holder).inspect()).Config.Labels ?? {};
      const proxy = labels[ALLOW_LABEL.proxyOf];
      const address = labels[ALLOW_LABEL.address];
      return proxy && address ? { proxy, address } : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      return this.#fail(err, "inspect the network holder");
    }
  }

  /**
   * Writes a sandbox's rules at its proxy (`rules` undefined: network "none", everything denied).
   * The proxy reads them on its next connection from `address`.
   */
  async writePolicy(proxy: string, address: string, holder: string, rules: string[] | undefined): Promise<void> {
    const archive = pack();
    const body = JSON.stringify(rules === undefined ? { holder, none: true, allow: [] } : { holder, allow: rules });
    archive.entry({ name: `${address}.json`, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }, body);
    archive.finalize();
    try {
      await this.#docker.getContainer(proxy).putArchive(Readable.from(archive), { path: `${DATA_DIR}/policies` });
    } catch (err) {
      return this.#fail(err, "write the sandbox's network policy at Kiln's egress proxy");
    }
  }

  /** The policy the proxy holds for a holder's address: "none", { allow }, or undefined (none there). */
  async readPolicy(proxy: string, address: string): Promise<"none" | { allow: string[] } | undefined> {
    const text = await this.#readFile(proxy, `${DATA_DIR}/policies/${address}.json`, "read the network policy");
    if (text === undefined) return undefined;
    try {
      const policy = JSON.parse(text) as { none?: boolean; allow?: string[] };
      return policy.none ? "none" : { allow: policy.allow ?? [] };
    } catch {
      return undefined; // being written
    }
  }

  /** One file of the proxy's data, or undefined when it is not there. */
  async #readFile(proxy: string, path: string, what: string): Promise<string | undefined> {
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.#docker.getContainer(proxy).getArchive({ path });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      return this.#fail(err, `${what} at Kiln's egress proxy`);
    }
    const untar = extract();
    let text = "";
    untar.on("entry", (_header, stream, next) => {
      stream.on("data", (chunk: unknown) => {
        text += (chunk as Buffer).toString("utf8");
      });
      stream.on("end", next);
      stream.resume();
    });
    await new Promise<void>((resolve, reject) => {
      untar.on("finish", resolve);
      untar.on("error", reject);
      archive.pipe(untar);
    });
    return text;
  }

  /** The proxy's recent decisions for one holder, oldest first (at most `limit`). */
  async log(proxy: string, holder: string, limit = 200): Promise<NetworkDecision[]> {
    const text = await this.#readFile(proxy, `${DATA_DIR}/logs/${holder}.jsonl`, "read the network log");
    if (text === undefined) return [];
    return parseNetworkLog(text, limit);
  }

  /**
   * Removes proxies no holder refers to any more, once they have been up for PROXY_IDLE_GRACE_MS
   * (a process that just started one is about to create its holder). Returns the ids removed.
   * `only`: consider just the proxy of that name (tests).
   */
  async reclaim(now = Date.now(), only?: string): Promise<string[]> {
    const removed: string[] = [];
    const proxies = await this.#docker.listContainers({
      all: true,
      filters: { label: [ALLOW_LABEL.proxy], ...(only === undefined ? {} : { name: [only] }) },
    });
    if (proxies.length === 0) return removed;
    const holders = await this.#docker.listContainers({ all: true, filters: { label: [ALLOW_LABEL.proxyOf] } });
    const inUse = new Set(holders.map((h) => h.Labels[ALLOW_LABEL.proxyOf]));
    for (const p of proxies) {
      const name = (p.Names[0] ?? "").replace(/^\//, "");
      if (inUse.has(name) || (only !== undefined && name !== only)) continue;
      if (now - p.Created * 1000 < PROXY_IDLE_GRACE_MS) continue;
      try {
        const started = Date.parse((await this.#docker.getContainer(p.Id).inspect()).State.StartedAt);
        if (now - started < PROXY_IDLE_GRACE_MS) continue;
        await this.#docker.getContainer(p.Id).remove({ force: true });
        removed.push(p.Id);
      } catch {
        // gone already
      }
    }
    return removed;
  }
}

export interface Proxy {
  name: string;
  address: string;
  url: string;
}
