/**
 * The network of `network: "egress"` sandboxes on Docker, all in one place.
 *
 * An egress sandbox never joins the bridge itself. A tiny per-sandbox **network holder**
 * container (opaque random name, `sleep` as uid nobody with no capabilities) joins Kiln's
 * `kiln-egress` bridge; its entry point first installs the packet filter in its fresh network
 * namespace (with NET_ADMIN, as root), prints a ready line and only then drops to nobody with
 * every capability gone and sleeps. The sandbox is created with `NetworkMode: container:<holder>`
 * and is started only after that ready line: nothing of the sandbox's runs before its network is
 * confined, on the first start and on every restart (each start of the holder is a new namespace
 * and reruns the filter). Only holders are on the bridge, so the engine's DNS resolves nothing but
 * opaque holder names.
 *
 * Two layers keep the host out of reach, whatever its addresses are (they need not be private):
 * - in each holder's namespace: the special-purpose ranges, the host's own addresses and the
 *   subnets it is directly attached to are rejected, and port 53 only reaches the engine's
 *   resolver (127.0.0.11, over loopback; its forwarder runs as root in the namespace, so an owner
 *   match lets only uid 0's queries through to the upstream resolvers);
 * - on the engine's host: one rule in the INPUT chain rejects everything arriving from Kiln's
 *   bridge, installed (idempotently) by a one-shot host-network helper once per Kiln process, so
 *   addresses the host gains later are covered too.
 */
import { randomBytes } from "node:crypto";
import type Dockerode from "dockerode";
import { EngineError, NotSupportedError } from "../../errors.ts";
import { processOwner } from "../../sweeper.ts";
import { StreamDemuxer } from "./demux.ts";

/** The bridge holders join: Kiln's own, with inter-container traffic disabled. */
export const EGRESS_NETWORK = "kiln-egress";

export const EGRESS_LABEL = {
  /** On Kiln's helper containers: "network-holder" | "egress-guard". Never on sandboxes. */
  helper: "kiln.helper",
  /** On helpers: "<hostname>/<pid>" of the process that made it, for the sweeper. */
  owner: "kiln.owner",
  /** On an egress sandbox: the id of its network holder. */
  holder: "kiln.network-holder",
  /** One-shot firewall helpers of Kiln versions before network holders (reclaimed by the sweeper). */
  legacyFirewall: "kiln.firewall-for",
} as const;

export const HELPER_HOLDER = "network-holder";
export const HELPER_GUARD = "egress-guard";

/** Printed by a holder once its filter is in place; the sandbox starts only after it. */
export const READY_LINE = "kiln-network-ready";

/**
 * IPv4 destinations an egress sandbox never reaches: every IANA special-purpose block that is
 * not globally reachable (RFC 6890 and successors), except TEST-NET-3 (203.0.113.0/24).
 * That one exception is deliberate: on Kiln's build machines the whole outside world (package
 * mirrors, the npm registry) is addressed there, and blocking it would make egress useless there;
 * nothing real is ever routed to it elsewhere. The host's own addresses and attached subnets are
 * blocked separately, whatever range they are in.
 */
export const EGRESS_BLOCKED_V4 = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8", // private
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8", // loopback (the namespace's own loopback stays open: `-o lo` is accepted first)
  "169.254.0.0/16", // link-local: cloud metadata at 169.254.169.254
  "172.16.0.0/12", // private (Docker's bridges, the bridge gateway is the host)
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // TEST-NET-1 (documentation)
  "192.88.99.0/24", // deprecated 6to4 relay anycast
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // TEST-NET-2 (documentation)
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, and 255.255.255.255 broadcast
];

/**
 * IPv6: everything outside global unicast (2000::/3) is rejected (ULA, link-local, multicast,
 * NAT64's 64:ff9b::/96, IPv4-mapped), and inside it the blocks that lead elsewhere or nowhere.
 */
export const EGRESS_GLOBAL_V6 = "2000::/3";
export const EGRESS_BLOCKED_V6 = [
  "2001::/23", // IETF protocol assignments (Teredo, ORCHID, benchmarking)
  "2001:db8::/32", // documentation
  "2002::/16", // 6to4: would reach IPv4 private ranges through a relay
];

/** What the host guard learned about the engine's host: its addresses and attached subnets. */
export interface HostNetworks {
  v4: string[];
  v6: string[];
}

/** The filter rules of one address family, as iptables-restore input. */
function filterRules(blocked: string[], globalOnly?: string): string {
  const lines = ["*filter", ":OUTPUT ACCEPT [0:0]", "-A OUTPUT -o lo -j ACCEPT"];
  // DNS: the engine's resolver listens on 127.0.0.11 (loopback, accepted above). Its forwarder
  // sends the upstream queries from inside this namespace as root (uid 0); sandbox code never
  // runs as root here, so nothing else gets port 53 anywhere.
  for (const proto of ["udp", "tcp"]) {
    lines.push(`-A OUTPUT -p ${proto} --dport 53 -m owner --uid-owner 0 -j ACCEPT`);
  }
  lines.push("-A OUTPUT -p udp --dport 53 -j REJECT", "-A OUTPUT -p tcp --dport 53 -j REJECT --reject-with tcp-reset");
  if (globalOnly) lines.push(`-A OUTPUT ! -d ${globalOnly} -j REJECT`);
  for (const net of new Set(blocked)) lines.push(`-A OUTPUT -d ${net} -j REJECT`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/**
 * The holder's entry point (runs as root with NET_ADMIN, SETUID, SETGID, SETPCAP only): install
 * both families' filters, say so, then become nobody with every capability gone (bounding set
 * included) and sleep. `set -e`: any failure ends the holder, and a sandbox cannot join the
 * namespace of a container that is not running.
 */
export function holderScript(host: HostNetworks): string {
  const v4 = filterRules([...EGRESS_BLOCKED_V4, ...host.v4]);
  const v6 = filterRules([...EGRESS_BLOCKED_V6, ...host.v6], EGRESS_GLOBAL_V6);
  return [
    "set -e",
    `printf '%s' '${v4}' | iptables-restore`,
    // Without IPv6 in the kernel there is nothing to filter there.
    `if ip6tables -L OUTPUT >/dev/null 2>&1; then printf '%s' '${v6}' | ip6tables-restore; fi`,
    `echo ${READY_LINE}`,
    "exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all sleep infinity",
  ].join("\n");
}

/**
 * A holder of another kind than egress's (allow.ts: an allow-list holder on the proxy's internal
 * network, at a fixed address, with a filter that lets only the proxy through).
 */
export interface HolderVariant {
  network: string;
  address: string;
  script: string;
  labels: Record<string, string>;
}

/** A holder: joins the bridge, filters its namespace, then sleeps as nobody. */
export function holderCreateOptions(
  image: string,
  host: HostNetworks,
  variant?: HolderVariant,
): Dockerode.ContainerCreateOptions {
  const memory = 32 * 1024 * 1024;
  return {
    // Opaque: this is the only name on the bridge, and the engine's DNS resolves it.
    name: `kiln-net-${randomHex()}`,
    Image: image,
    User: "0:0",
    Entrypoint: ["/bin/sh", "-c", variant?.script ?? holderScript(host)],
    Cmd: [],
    // The sandbox shares this namespace and cannot set a hostname of its own.
    Hostname: "sandbox",
    Labels: { [EGRESS_LABEL.helper]: HELPER_HOLDER, [EGRESS_LABEL.owner]: processOwner(), ...variant?.labels },
    AttachStdout: true,
    AttachStderr: true,
    ...(variant === undefined
      ? {}
      : {
          NetworkingConfig: {
            EndpointsConfig: { [variant.network]: { IPAMConfig: { IPv4Address: variant.address } } },
          },
        }),
    HostConfig: {
      NetworkMode: variant?.network ?? EGRESS_NETWORK,
      CapDrop: ["ALL"],
      // Only for the entry point's few milliseconds as root; setpriv drops them all before sleep.
      CapAdd: ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "SETPCAP"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/run": "rw,nosuid,nodev,noexec,size=64k" },
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: 16,
      NanoCpus: 500_000_000,
      IpcMode: "private",
      RestartPolicy: { Name: "no" },
      LogConfig: { Type: "json-file", Config: { "max-size": "64k", "max-file": "1" } },
    },
  };
}

/**
 * The host guard's script (host network namespace, NET_ADMIN): reject everything arriving from
 * Kiln's bridge in INPUT (checked first, so running it again adds nothing), then print the host's
 * addresses and its routing table for the holders' filters.
 */
export function guardScript(bridge: string): string {
  const rule = `INPUT -i ${bridge} -m comment --comment kiln-egress -j REJECT`;
  return [
    "set -e",
    `iptables -C ${rule} 2>/dev/null || iptables -I ${rule.replace("INPUT", "INPUT 1")}`,
    `if ip6tables -L INPUT >/dev/null 2>&1; then ip6tables -C ${rule} 2>/dev/null || ip6tables -I ${rule.replace("INPUT", "INPUT 1")}; fi`,
    'echo "addresses $(hostname -I)"',
    "cat /proc/net/route",
  ].join("\n");
}

export function guardCreateOptions(image: string, bridge: string): Dockerode.ContainerCreateOptions {
  return {
    name: `kiln-guard-${randomHex()}`,
    Image: image,
    User: "0:0",
    Entrypoint: ["/bin/sh", "-c", guardScript(bridge)],
    Cmd: [],
    Labels: { [EGRESS_LABEL.helper]: HELPER_GUARD, [EGRESS_LABEL.owner]: processOwner() },
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      NetworkMode: "host",
      CapDrop: ["ALL"],
      CapAdd: ["NET_ADMIN", "NET_RAW"],
      SecurityOpt: ["no-new-privileges:true"],
      ReadonlyRootfs: true,
      Tmpfs: { "/run": "rw,nosuid,nodev,noexec,size=64k" },
      LogConfig: { Type: "json-file", Config: { "max-size": "64k", "max-file": "1" } },
    },
  };
}

/**
 * Parses the guard's output: the host's own addresses (each one address wide) and every subnet
 * it is directly attached to (routes without a gateway), so its neighbours stay out of reach too.
 */
export function parseGuardOutput(output: string): HostNetworks {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const line of output.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "addresses") {
      for (const address of fields.slice(1)) {
        if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) v4.add(`${address}/32`);
        else if (/^[0-9a-f:]+$/i.test(address) && address.includes(":")) v6.add(`${address}/128`);
      }
      continue;
    }
    // /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, host order)
    const [, destination, gateway, , , , , mask] = fields;
    if (!destination || !gateway || !mask || !/^[0-9A-F]{8}$/i.test(destination)) continue;
    if (gateway !== "00000000" || destination === "00000000") continue;
    const prefix = bitCount(Number.parseInt(mask, 16));
    v4.add(`${hexToIPv4(destination)}/${prefix}`);
  }
  return { v4: [...v4], v6: [...v6] };
}

/** /proc/net/route writes addresses as little-endian hex. */
function hexToIPv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join(".");
}

function bitCount(n: number): number {
  let count = 0;
  for (let v = n >>> 0; v; v >>>= 1) count += v & 1;
  return count;
}

function randomHex(): string {
  return randomBytes(8).toString("hex");
}

interface HttpError {
  statusCode?: number;
}

const statusOf = (err: unknown) => (err as HttpError).statusCode;

/** How long a holder may take to install its filter, and a helper to finish. */
const HELPER_TIMEOUT_MS = 30_000;
/** A holder without its sandbox, or a guard, older than this is garbage even if its owner lives. */
export const HELPER_MAX_AGE_MS = 10 * 60_000;
/** Far longer than an older Kiln's one-shot firewall helper lives (about a second). */
export const LEGACY_HELPER_GRACE_MS = 30_000;
/** Longer than any start takes: a holder running this long for a stopped sandbox is left over. */
const HOLDER_START_GRACE_MS = 2 * 60_000;

/**
 * The Docker side of egress: the network, the host guard, holders and their lifecycle. A
 * DockerEngine owns one; `fail` maps an engine failure to Kiln's errors.
 */
export class EgressNetworks {
  readonly #docker: Dockerode;
  readonly #image: (() => Promise<string>) | undefined;
  readonly #fail: (err: unknown, what: string) => never;
  #ready?: Promise<HostNetworks>;

  constructor(
    docker: Dockerode,
    image: (() => Promise<string>) | undefined,
    fail: (err: unknown, what: string) => never,
  ) {
    this.#docker = docker;
    this.#image = image;
    this.#fail = fail;
  }

  /** The image helpers run from (the runtime image). */
  async helperImage(): Promise<string> {
    if (!this.#image) {
      throw new NotSupportedError('network: "egress" needs the runtime image (for its network holder)');
    }
    return this.#image();
  }

  /**
   * The bridge exists and the host's INPUT chain rejects it: once per process (the guard is
   * idempotent, so every process may run it; it also learns the host's addresses).
   */
  ready(): Promise<HostNetworks> {
    this.#ready ??= this.#prepare().catch((err) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #prepare(): Promise<HostNetworks> {
    try {
      const existing = await this.#docker.listNetworks({ filters: { name: [EGRESS_NETWORK] } });
      if (!existing.some((n) => n.Name === EGRESS_NETWORK)) {
        await this.#docker
          .createNetwork({
            Name: EGRESS_NETWORK,
            Driver: "bridge",
            Labels: { "kiln.network": "egress" },
            Options: { "com.docker.network.bridge.enable_icc": "false" },
          })
          .catch((err) => {
            if (statusOf(err) !== 409) throw err; // another process made it first
          });
      }
    } catch (err) {
      return this.#fail(err, "create the egress network");
    }
    let bridge: string;
    try {
      const network = (await this.#docker.getNetwork(EGRESS_NETWORK).inspect()) as {
        Id: string;
        Options?: Record<string, string>;
      };
      bridge = network.Options?.["com.docker.network.bridge.name"] ?? `br-${network.Id.slice(0, 12)}`;
    } catch (err) {
      return this.#fail(err, "inspect the egress network");
    }
    const { code, stdout, stderr } = await this.#runOnce(guardCreateOptions(await this.helperImage(), bridge));
    if (code !== 0) {
      throw new EngineError(
        `Could not shut the engine's host off from egress sandboxes (iptables in the host's network namespace exited with ${code}: ${stderr.trim().slice(-400)}). ` +
          'An engine that cannot change its host\'s firewall (rootless Docker, for one) cannot run network: "egress" safely; use network: "none".',
      );
    }
    return parseGuardOutput(stdout);
  }

  /** A one-shot helper: created, attached, started, waited for, and always removed. */
  async #runOnce(options: Dockerode.ContainerCreateOptions): Promise<{ code: number; stdout: string; stderr: string }> {
    let container: Dockerode.Container | undefined;
    try {
      container = await this.#docker.createContainer(options);
      const output = new AttachedOutput(await container.attach({ stream: true, stdout: true, stderr: true }));
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      await output.ended(HELPER_TIMEOUT_MS);
      return { code: StatusCode, stdout: output.stdout, stderr: output.stderr };
    } catch (err) {
      return this.#fail(err, `run ${options.name}`);
    } finally {
      await container?.remove({ force: true }).catch(() => {});
    }
  }

  /** Creates a stopped holder for a new egress (or, with a variant, allow-list) sandbox; returns its id. */
  async createHolder(variant?: HolderVariant): Promise<string> {
    const host = await this.ready();
    const image = await this.helperImage();
    try {
      return (await this.#docker.createContainer(holderCreateOptions(image, host, variant))).id;
    } catch (err) {
      return this.#fail(err, "create the network holder");
    }
  }

  /**
   * Starts a holder afresh and resolves once its filter is in place. A holder found running is
   * restarted: this process has not seen its ready line (it may be mid-install for a start that
   * died, or the filter of another host's view), and a fresh namespace costs ~0.3 s.
   */
  async startHolder(id: string): Promise<void> {
    const holder = this.#docker.getContainer(id);
    let output: AttachedOutput | undefined;
    try {
      const state = (await holder.inspect()).State;
      if (state.Running) await holder.stop({ t: 0 });
      output = new AttachedOutput(await holder.attach({ stream: true, stdout: true, stderr: true }));
      await holder.start();
      await output.line(READY_LINE, HELPER_TIMEOUT_MS);
    } catch (err) {
      await holder.stop({ t: 0 }).catch(() => {});
      if (statusOf(err) === 404) {
        throw new EngineError(
          `The network holder ${id} of this egress sandbox is gone: delete the sandbox and create it again`,
          {
            cause: err,
          },
        );
      }
      return this.#fail(err, "confine the egress sandbox's network");
    } finally {
      output?.close();
    }
  }

  /** Stops a holder (its sandbox stopped); quiet when it is gone or stopped. */
  async stopHolder(id: string): Promise<void> {
    await this.#docker
      .getContainer(id)
      .stop({ t: 0 })
      .catch(() => {});
  }

  async removeHolder(id: string): Promise<void> {
    await this.#docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => {});
  }

  /** The holder an existing container's network belongs to, or undefined (gone, or not egress). */
  async holderOf(id: string): Promise<string | undefined> {
    try {
      return (await this.#docker.getContainer(id).inspect()).Config.Labels?.[EGRESS_LABEL.holder];
    } catch {
      return undefined;
    }
  }

  /**
   * What the sweeper reclaims here: holders whose sandbox is gone (the creating process died,
   * or the sandbox was removed behind Kiln's back), holders still running for a sandbox that
   * stopped on its own (auto-stop, a crash), guards a dead process left, and the one-shot
   * firewall helpers of older Kiln versions. Returns the ids removed.
   */
  async reclaim(ownerAlive: (owner: string | undefined) => boolean, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const list = (label: string) => this.#docker.listContainers({ all: true, filters: { label: [label] } });
    const [helpers, legacy] = await Promise.all([list(EGRESS_LABEL.helper), list(EGRESS_LABEL.legacyFirewall)]);
    // Listed after the helpers: a holder made between the two lists has a live owner, and is skipped.
    const users = new Map<string, Dockerode.ContainerInfo>();
    for (const c of await list(EGRESS_LABEL.holder)) {
      const holder = c.Labels[EGRESS_LABEL.holder];
      if (holder) users.set(holder, c);
    }
    const remove = async (id: string) => {
      try {
        await this.#docker.getContainer(id).remove({ force: true });
        removed.push(id);
      } catch {
        // gone already, or being removed by someone else
      }
    };
    for (const h of helpers) {
      const old = now - h.Created * 1000 > HELPER_MAX_AGE_MS;
      const orphaned = !ownerAlive(h.Labels[EGRESS_LABEL.owner]) || old;
      if (h.Labels[EGRESS_LABEL.helper] !== HELPER_HOLDER) {
        if (orphaned) await remove(h.Id);
        continue;
      }
      const user = users.get(h.Id);
      if (!user) {
        if (orphaned) await remove(h.Id);
        continue;
      }
      if (h.State === "running" && user.State !== "running") await this.#stopIfSandboxEnded(h.Id, user.Id, now);
    }
    // An older Kiln's helper lives for a second or two, created, running, then removed by that
    // process: only one well past that is left over (never one an older Kiln is still using).
    for (const c of legacy) {
      if (now - c.Created * 1000 > LEGACY_HELPER_GRACE_MS) await remove(c.Id);
    }
    return removed;
  }

  /**
   * Stops a holder whose sandbox ended after the holder's start, or that has run for minutes
   * without its sandbox (a start that died halfway); not one whose sandbox is being started now.
   */
  async #stopIfSandboxEnded(holderId: string, sandboxId: string, now: number): Promise<void> {
    try {
      const [holder, sandbox] = await Promise.all([
        this.#docker.getContainer(holderId).inspect(),
        this.#docker.getContainer(sandboxId).inspect(),
      ]);
      if (sandbox.State.Running) return;
      const started = Date.parse(holder.State.StartedAt);
      if (started < Date.parse(sandbox.State.FinishedAt) || now - started > HOLDER_START_GRACE_MS) {
        await this.stopHolder(holderId);
      }
    } catch {
      // either is gone: the next sweep sees the new state
    }
  }
}

/** A container's attach stream, demultiplexed and collected (bounded) until it ends. */
export class AttachedOutput {
  static readonly KEEP = 64 * 1024;
  stdout = "";
  stderr = "";
  readonly #stream: NodeJS.ReadableStream & { destroy?: () => void };
  readonly #ended: Promise<void>;
  #onData: (() => void) | undefined;
  #done = false;

  constructor(stream: NodeJS.ReadableStream) {
    this.#stream = stream;
    const demuxer = new StreamDemuxer(
      (chunk) => {
        if (this.stdout.length < AttachedOutput.KEEP) this.stdout += chunk.toString("utf8");
        this.#onData?.();
      },
      (chunk) => {
        if (this.stderr.length < AttachedOutput.KEEP) this.stderr += chunk.toString("utf8");
      },
    );
    stream.on("data", (chunk: Buffer) => demuxer.push(chunk));
    this.#ended = new Promise((resolve) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", resolve);
    });
    this.#ended.then(() => {
      this.#done = true;
      this.#onData?.();
    });
  }

  /** Resolves when the stream has ended (the container exited), or after `timeoutMs`. */
  async ended(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#ended, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Resolves once stdout holds `line`; rejects when the stream ends first or time runs out. */
  line(line: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onData = undefined;
        reject(new EngineError(`no "${line}" within ${timeoutMs} ms: ${this.stderr.trim().slice(-400)}`));
      }, timeoutMs);
      this.#onData = () => {
        if (this.stdout.split("\n").includes(line)) {
          clearTimeout(timer);
          this.#onData = undefined;
          resolve();
        } else if (this.#done) {
          clearTimeout(timer);
          this.#onData = undefined;
          reject(new EngineError(`exited before "${line}": ${this.stderr.trim().slice(-400)}`));
        }
      };
      this.#onData();
    });
  }

  close(): void {
    this.#stream.destroy?.();
  }
}
