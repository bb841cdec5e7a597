// Hostile probes against `network: "egress"` (issue 8, defects 2, 3, 4 and 11; helper leftovers
// after a kill -9). Traffic goes only to this machine: listeners of the test process on 0.0.0.0
// and a test host: a network namespace made here with a private address, routed through the host
// like any outside destination (`ip netns`, so the tests run as root). Every probe runs on a fresh create
// and again after a stop and start.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import { EGRESS_LABEL, HELPER_HOLDER, LEGACY_HELPER_GRACE_MS } from "../src/engine/docker/egress.ts";
import { debianMirror } from "../src/images/debian-base.ts";
import type { Sandbox } from "../src/index.ts";
import { sweepHelpers } from "../src/sweeper.ts";
import { sandbox, TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();
const docker = (kiln.engine as DockerEngine).docker;
const image = inject("runtimeImage");

/** Every IPv4 address of this host but loopback: all of them answer the listeners below. */
const hostAddresses = Object.values(networkInterfaces())
  .flat()
  .filter((a) => a !== undefined && a.family === "IPv4" && !a.internal)
  .map((a) => a?.address as string);

let tcp: Server;
let udp: Socket;
let tcpPort = 0;
let udpPort = 0;
/** Who reached the host's listeners: no address of Kiln's egress bridge may ever appear here. */
const peers: string[] = [];
let egressSubnet = "";

const run = promisify(execFile);
const ns = `kiln-test-${process.pid}`;
const vethHost = `kth${process.pid % 100000}h`;
const vethNs = `kth${process.pid % 100000}n`;
const subnet = `10.253.${process.pid % 250}`;
const testHostAddress = `${subnet}.2`;
let testHost: ChildProcess | undefined;

/**
 * The probe, run as the sandbox user: TCP connect, a UDP datagram that expects a reply, and an
 * ICMP echo (unprivileged ping socket), per target. Prints {target: {tcp, udp, icmp}}.
 */
const PROBE = `
import json, socket, struct, sys
targets, tcp_port, udp_port = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def attempt(fn):
    try:
        fn()
        return "reached"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
def tcp(host):
    socket.create_connection((host, tcp_port), timeout=2).close()
def udp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.5)
    s.sendto(b"kiln-probe", (host, udp_port))
    s.recvfrom(64)
def icmp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(1.5)
    s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"kiln", (host, 0))
    s.recvfrom(64)
print(json.dumps({t: {"tcp": attempt(lambda: tcp(t)), "udp": attempt(lambda: udp(t)), "icmp": attempt(lambda: icmp(t))} for t in targets}))
`;

type ProbeResult = Record<string, { tcp: string; udp: string; icmp: string }>;

function probeCommand(targets: string[], tcpTo = tcpPort, udpTo = udpPort): string {
  return `python3 - '${JSON.stringify(targets)}' ${tcpTo} ${udpTo} <<'EOF'\n${PROBE}\nEOF`;
}

async function probe(sb: Sandbox, targets: string[], tcpTo = tcpPort, udpTo = udpPort): Promise<ProbeResult> {
  const result = await sb.exec(probeCommand(targets, tcpTo, udpTo), { timeoutMs: 60_000 });
  expect(result.exitCode, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as ProbeResult;
}

/** The same probe from the test host (its own namespace, routed through the host), as root. */
async function probeFromTestHost(targets: string[]): Promise<ProbeResult> {
  const { stdout } = await run("ip", [
    "netns",
    "exec",
    ns,
    "/usr/bin/python3",
    "-c",
    PROBE,
    JSON.stringify(targets),
    String(tcpPort),
    String(udpPort),
  ]);
  return JSON.parse(stdout) as ProbeResult;
}

function inSubnet(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const toInt = (a: string) => a.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = bits === "0" ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(address.replace(/^::ffff:/, "")) & mask) === (toInt(base ?? "") & mask);
}

function egressPeers(): string[] {
  return peers.filter((p) => inSubnet(p, egressSubnet));
}

beforeAll(async () => {
  tcp = createServer((socket) => {
    socket.on("error", () => {});
    peers.push(socket.remoteAddress ?? "");
    socket.end("host secret\n");
  });
  await new Promise<void>((resolve) => tcp.listen(0, "0.0.0.0", resolve));
  tcpPort = (tcp.address() as { port: number }).port;
  udp = createSocket("udp4");
  udp.on("message", (_msg, rinfo) => {
    peers.push(rinfo.address);
    udp.send("host secret", rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, "0.0.0.0", resolve));
  udpPort = udp.address().port;

  // A test host at a private address, outside Docker (so no bridge isolation of Docker's is in
  // the way): it listens on port 53 (TCP and UDP), as an internal DNS server would.
  const sh = (args: string[]) => run("ip", args);
  await sh(["netns", "add", ns]);
  await sh(["link", "add", vethHost, "type", "veth", "peer", "name", vethNs]);
  await sh(["link", "set", vethNs, "netns", ns]);
  await sh(["addr", "add", `${subnet}.1/30`, "dev", vethHost]);
  await sh(["link", "set", vethHost, "up"]);
  await sh(["-n", ns, "addr", "add", `${testHostAddress}/30`, "dev", vethNs]);
  await sh(["-n", ns, "link", "set", vethNs, "up"]);
  await sh(["-n", ns, "link", "set", "lo", "up"]);
  await sh(["-n", ns, "route", "add", "default", "via", `${subnet}.1`]);
  // Unprivileged ICMP echo sockets for the probe (a new namespace allows them to nobody).
  await sh(["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
  testHost = spawn("ip", ["netns", "exec", ns, "/usr/bin/python3", "-c", TEST_HOST], { stdio: "ignore" });
  // The host reaches the test host's port 53: it is listening.
  await waitForTcp(testHostAddress, 53);
}, 120_000);

afterAll(async () => {
  testHost?.kill("SIGKILL");
  await run("ip", ["link", "del", vethHost]).catch(() => {});
  await run("ip", ["netns", "del", ns]).catch(() => {});
  await new Promise<void>((resolve) => tcp.close(() => resolve()));
  udp.close();
});

const TEST_HOST = String.raw`
import socket, threading
def serve_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        data, peer = s.recvfrom(512)
        s.sendto(b"internal answer", peer)
threading.Thread(target=serve_udp, daemon=True).start()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 53))
t.listen(16)
while True:
    c, _ = t.accept()
    c.sendall(b"internal answer\n")
    c.close()
`;

async function waitForTcp(host: string, port: number): Promise<void> {
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port, timeout: 1000 }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
      s.on("timeout", () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (i > 100) throw new Error(`${host}:${port} never listened`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A raw DNS query (type A) to `server`; true when any answer comes back. */
const DNS_QUERY = String.raw`
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack("!HHHHHH", 0x4b1e, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (server, 53))
data, _ = s.recvfrom(512)
print("answered", data[:2] == q[:2])
`;

describe("the control: the test host reaches what egress sandboxes must not", () => {
  it("reaches the host's listeners on every host address over TCP, UDP and ICMP", async () => {
    const result = await probeFromTestHost(hostAddresses);
    for (const address of hostAddresses) {
      expect(result[address], address).toEqual({ tcp: "reached", udp: "reached", icmp: "reached" });
    }
  });
});

let egress: Sandbox;
let other: Sandbox;
let otherName = "";

describe.each(["on a fresh create", "after a stop and start"])("an egress sandbox %s", (phase) => {
  beforeAll(async () => {
    if (phase === "on a fresh create") {
      otherName = uniqueName("egress-other");
      [egress, other] = await Promise.all([
        sandbox(kiln, { network: "egress" }),
        sandbox(kiln, { network: "egress", name: otherName }),
      ]);
      const network = await docker.getNetwork("kiln-egress").inspect();
      egressSubnet = network.IPAM?.Config?.[0]?.Subnet ?? "";
      expect(egressSubnet).toMatch(/\/\d+$/);
    } else {
      await Promise.all([egress.stop(), other.stop()]);
      await Promise.all([egress.start(), other.start()]);
    }
  }, 120_000);

  it("cannot reach the host through any of its addresses, over TCP, UDP or ICMP (defect 3)", async () => {
    const gateway = (await egress.exec("awk '$2 == \"00000000\" {print $3}' /proc/net/route")).stdout.trim();
    const targets = [...hostAddresses];
    const result = await probe(egress, targets);
    for (const target of targets) {
      expect(result[target]?.tcp, `${target} tcp`).not.toBe("reached");
      expect(result[target]?.udp, `${target} udp`).not.toBe("reached");
      expect(result[target]?.icmp, `${target} icmp`).not.toBe("reached");
    }
    expect(gateway).toMatch(/^[0-9A-F]{8}$/); // it has a route out: the network is there, only confined
    expect(egressPeers()).toEqual([]);
  });

  it("cannot reach cloud metadata or special-purpose ranges", async () => {
    const targets = ["169.254.169.254", "192.0.2.1", "198.51.100.1", "198.18.0.1", "0.0.0.1"];
    const result = await probe(egress, targets);
    for (const target of targets) expect(result[target]?.tcp, target).not.toBe("reached");
    // Still its own: the namespace's loopback.
    expect((await probe(egress, ["127.0.0.1"]))["127.0.0.1"]?.icmp).toBe("reached");
  });

  it("reaches port 53 only on the engine's resolver (defect 4)", async () => {
    const result = await probe(egress, [testHostAddress], 53, 53);
    expect(result[testHostAddress]?.tcp).not.toBe("reached");
    expect(result[testHostAddress]?.udp).not.toBe("reached");
    // The engine's own resolver answers on 127.0.0.11 ...
    const own = await egress.exec(`python3 - 127.0.0.11 kiln-probe.invalid <<'EOF'\n${DNS_QUERY}\nEOF`);
    expect(own.stdout).toBe("answered True\n");
    // ... and a direct query to a resolver elsewhere does not get out.
    const direct = await egress.exec(`python3 - ${testHostAddress} kiln-probe.invalid <<'EOF'\n${DNS_QUERY}\nEOF`);
    expect(direct.stdout).not.toMatch(/answered/);
  });

  it("still resolves outside names: the engine's forwarder (root in the namespace) gets through", async (context) => {
    const mirror = await debianMirror();
    if (!mirror) context.skip(); // no outside name is known on this machine
    const host = new URL(mirror as string).hostname;
    const result = await egress.exec(`getent hosts ${host}`, { timeoutMs: 20_000 });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^\S+\s/);
  });

  it("cannot resolve other egress sandboxes' names or ids through the engine's DNS (defect 11)", async () => {
    for (const name of [`kiln.${otherName}`, other.id.slice(0, 12)]) {
      const result = await egress.exec(`getent hosts ${name}`);
      expect(result.exitCode, `${name} resolved: ${result.stdout}`).not.toBe(0);
    }
    // The engine's DNS does answer names on the bridge: only opaque holder names are there.
    const [holder] = await docker.listContainers({
      all: true,
      filters: { id: [(await docker.getContainer(other.id).inspect()).Config.Labels[EGRESS_LABEL.holder] ?? ""] },
    });
    const holderName = holder?.Names[0]?.replace(/^\//, "") ?? "";
    expect(holderName).toMatch(/^kiln-net-[0-9a-f]{16}$/);
    expect((await egress.exec(`getent hosts ${holderName}`)).exitCode).toBe(0);
  });
});

describe("nothing of the sandbox's runs before its network is confined (defect 2)", () => {
  // Planted in the user site: every Python process (the kernel the agent starts first of all)
  // runs it. It hammers the host's listener through the bridge gateway for 3 s from its start.
  const PLANT = String.raw`
import os, socket, time
def _kiln_probe():
    try:
        os.close(os.open("/tmp/.kiln-probe-started", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError:
        return
    parent = "kernel" if "kernel_python" in open("/proc/self/cmdline").read() else "other"
    r, w = os.pipe()
    if os.fork() != 0:
        os.read(r, 1)  # the child has left this process group, which is killed when a command ends
        return
    try:
        os.setsid()
        os.write(w, b"x")
        os.closerange(0, 1024)
        log = open("/home/kiln/.kiln-probe.log", "a", buffering=1)
        gateway = ""
        for line in open("/proc/net/route").read().splitlines()[1:]:
            f = line.split()
            if f[1] == "00000000":
                gateway = ".".join(str(int(f[2][i:i + 2], 16)) for i in (6, 4, 2, 0))
        log.write(f"started {time.time()} gateway {gateway} by {parent}\n")
        attempts, deadline = 0, time.time() + 3
        while time.time() < deadline:
            attempts += 1
            try:
                socket.create_connection((gateway, PORT), timeout=0.05).close()
                log.write(f"reached {time.time()}\n")
            except Exception as e:
                if attempts == 1:
                    log.write(f"first attempt {time.time()}: {e}\n")
                time.sleep(0.001)
        log.write(f"done {attempts}\n")
    finally:
        os._exit(0)
_kiln_probe()
`;

  async function plantedLog(sb: Sandbox): Promise<string> {
    // The agent's kernel runs it at boot; no other Python may start before it does. Only if it
    // never starts is it run by hand (and then the "by kernel" expectation fails, as it should).
    for (let i = 0; i < 150; i++) {
      const log = (await sb.exec("cat /home/kiln/.kiln-probe.log 2>/dev/null || true")).stdout;
      if (/^done \d+$/m.test(log)) return log;
      if (i === 100) await sb.exec("python3 -c pass");
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("the planted probe never finished");
  }

  it("a probe planted in the user site never reaches the host, on a fresh create or a restart", async () => {
    const planted = await sandbox(kiln, { network: "egress" });
    const site = (await planted.exec("python3 -m site --user-site")).stdout.trim();
    const plant = PLANT.replace("PORT", String(tcpPort));
    await planted.exec(
      `mkdir -p ${site} && cat > /home/kiln/.kiln-probe.py <<'EOF'\n${plant}\nEOF\necho 'import os; exec(open("/home/kiln/.kiln-probe.py").read(), {})' > ${site}/zz_kiln_probe.pth`,
    );

    // Restart: the agent starts the kernel (and so the probe) as early as it can.
    await planted.stop();
    await planted.start();
    const restarted = await plantedLog(planted);
    // The agent's kernel ran it at boot, before anyone asked for anything.
    expect(restarted).toMatch(/^started .* gateway \d+\.\d+\.\d+\.\d+ by kernel$/m);
    expect(restarted, restarted).not.toMatch(/reached/);

    // Fresh create: a new sandbox from a snapshot that carries the plant.
    await planted.exec("rm -f /home/kiln/.kiln-probe.log");
    const snap = uniqueName("planted");
    await planted.snapshot(snap);
    let fresh: Sandbox | undefined;
    try {
      fresh = await sandbox(kiln, { network: "egress", snapshot: snap });
      const log = await plantedLog(fresh);
      expect(log, log).toMatch(/^started .* by kernel$/m);
      expect(log, log).not.toMatch(/reached/);
    } finally {
      await fresh?.delete().catch(() => {});
      await kiln.snapshots.delete(snap).catch(() => {});
    }
    expect(egressPeers()).toEqual([]);
  });
});

// sweepHelpers is the part of sweep() that reclaims helpers; a full sweep here would also
// auto-delete and reclaim the sandboxes of the test files running beside this one.
describe("helper containers are reclaimed", () => {
  const ownedBy = (pid: number) => [`${EGRESS_LABEL.owner}=${hostname()}/${pid}`];

  async function killDuring(stage: "any helper" | "holder"): Promise<number> {
    const script = fileURLToPath(new URL("./fixtures/egress-create-child.ts", import.meta.url));
    const child = spawn(process.execPath, [script, image], { stdio: ["ignore", "pipe", "inherit"] });
    const pid = child.pid as number;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const labels = stage === "holder" ? [`${EGRESS_LABEL.helper}=${HELPER_HOLDER}`] : [EGRESS_LABEL.helper];
    for (let i = 0; ; i++) {
      const found = await docker.listContainers({ all: true, filters: { label: [...labels, ...ownedBy(pid)] } });
      if (found.length > 0) break;
      if (i > 3000) throw new Error("the child never made a helper");
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    await exited;
    return pid;
  }

  async function leftovers(pid: number) {
    return docker.listContainers({ all: true, filters: { label: ownedBy(pid) } });
  }

  /**
   * What the killed process left, once Docker has finished the requests it had in flight: a
   * create sent just before the kill still lands afterwards (seen under load: a helper that
   * appeared after the sweep had listed). Settled = the same set twice, 300 ms apart.
   */
  async function settledLeftovers(pid: number) {
    let before = (await leftovers(pid)).map((c) => c.Id).sort();
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 300));
      const now = await leftovers(pid);
      const ids = now.map((c) => c.Id).sort();
      if (ids.join() === before.join()) return now;
      before = ids;
    }
    throw new Error("the killed process's containers never stopped changing");
  }

  /** A sandbox the killed create left (reclaiming those is the cold-create sweep's job): removed behind Kiln's back. */
  async function removeLeftSandboxes(holders: string[]) {
    for (const holder of holders) {
      for (const c of await docker.listContainers({
        all: true,
        filters: { label: [`${EGRESS_LABEL.holder}=${holder}`] },
      })) {
        await docker.getContainer(c.Id).remove({ force: true });
      }
    }
  }

  it("after kill -9 during an egress create, the next sweep removes its helpers", async () => {
    for (const stage of ["any helper", "holder"] as const) {
      const pid = await killDuring(stage);
      // killDuring saw the child's helper before the kill. Another process's sweeper (the same
      // code) may already have removed it by now (seen in CI): what counts is that they go.
      const left = await settledLeftovers(pid);
      await removeLeftSandboxes(left.map((c) => c.Id));
      await sweepHelpers(kiln.engine);
      expect(await leftovers(pid), stage).toEqual([]);
    }
  });

  it("removes an Exited firewall helper an older Kiln left, never one it may still be using", async () => {
    const legacy = await docker.createContainer({
      Image: image,
      Entrypoint: ["true"],
      Cmd: [],
      Labels: { [EGRESS_LABEL.legacyFirewall]: "0123456789ab", ...TEST_LABELS },
      HostConfig: { NetworkMode: "none" },
    });
    await legacy.start();
    await legacy.wait();
    // Just made: it may belong to an older Kiln running beside this one, mid-create.
    await sweepHelpers(kiln.engine);
    expect((await legacy.inspect()).State.Status).toBe("exited");
    // Past the grace, it is left over. (Real time: a sweep judging by a later clock would also
    // act on what the test files running beside this one are doing right now.)
    await new Promise((r) => setTimeout(r, LEGACY_HELPER_GRACE_MS + 1000));
    await sweepHelpers(kiln.engine);
    await expect(legacy.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("stops the holder of a sandbox that stopped on its own; the sandbox starts again confined", async () => {
    const sb = await sandbox(kiln, { network: "egress" });
    const holderId = (await docker.getContainer(sb.id).inspect()).Config.Labels[EGRESS_LABEL.holder] ?? "";
    await docker.getContainer(sb.id).kill(); // as if it crashed, or stopped itself when idle
    await docker.getContainer(sb.id).wait();
    expect((await docker.getContainer(holderId).inspect()).State.Running).toBe(true);
    await sweepHelpers(kiln.engine);
    expect((await docker.getContainer(holderId).inspect()).State.Running).toBe(false);
    await sb.start();
    const result = await probe(sb, hostAddresses);
    for (const address of hostAddresses) expect(result[address]?.tcp).not.toBe("reached");
    await sb.delete();
    await expect(docker.getContainer(holderId).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe("a pooled egress sandbox", () => {
  it("is confined when claimed, and its holder goes with it and with the pool", async () => {
    const pooled = testKiln({ image, pool: { size: 1 }, defaults: { network: "egress" } });
    await pooled.pool?.filled();
    expect(pooled.pool?.lastError).toBeUndefined();
    const holderOf = async (id: string) =>
      (await docker.getContainer(id).inspect()).Config.Labels[EGRESS_LABEL.holder] ?? "";
    const claimed = await sandbox(pooled, { network: "egress" });
    const holder = await holderOf(claimed.id);
    expect(holder).not.toBe("");
    const result = await probe(claimed, hostAddresses);
    for (const address of hostAddresses) expect(result[address]?.tcp, address).not.toBe("reached");
    await claimed.delete();
    await expect(docker.getContainer(holder).inspect()).rejects.toMatchObject({ statusCode: 404 });
    // The refilled member's holder is removed with it when the pool closes.
    await pooled.pool?.filled();
    const members = await docker.listContainers({
      all: true,
      filters: { label: [`kiln.owner=${hostname()}/${process.pid}`, "kiln.kind=pool"] },
    });
    const memberHolders = await Promise.all(members.map((m) => holderOf(m.Id)));
    expect(memberHolders.length).toBeGreaterThan(0);
    await pooled.close();
    for (const h of memberHolders)
      await expect(docker.getContainer(h).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});
