// Network allow-lists (issue 13) against the real engine: Kiln's egress proxy, the allow-list
// holder's filter, and test "internet" hosts on a Docker network this file makes (allow-hosts.ts);
// no traffic leaves this machine.
import { readdir, readFile } from "node:fs/promises";
import { BlockList } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import { EGRESS_LABEL } from "../src/engine/docker/egress.ts";
import { NotSupportedError, type Sandbox } from "../src/index.ts";
import { HOSTILE_PROXY_REQUESTS, SNI_MISMATCH_PROBE, startTestHosts, type TestHosts } from "./allow-hosts.ts";
import { sandbox, testKiln } from "./helpers.ts";
import { testRunLabel } from "./test-run-label.ts";

const image = inject("runtimeImage");
let hosts: TestHosts;
let engine: DockerEngine;
let kiln: ReturnType<typeof testKiln>;
let sb: Sandbox;

/**
 * Test-only proxy settings: the test hosts' network, its subnet trusted, the test host's DNS
 * server as the proxy's resolver, a few names pinned.
 */
function proxyOptions(h: TestHosts) {
  return {
    networks: [h.network],
    trust: [h.subnet],
    resolver: h.address,
    hosts: { "internal.test": privateOutside(h.subnet), "loop.test": "127.0.0.1", "meta.test": "169.254.169.254" },
  };
}

/**
 * A private address outside the trusted test subnet: the engine picks that subnet from its pools
 * (172.16/12, then 192.168/16 in /20s once many networks exist), so a fixed choice could fall
 * inside it and be dialled as trusted.
 */
function privateOutside(subnet: string): string {
  const [base, bits] = subnet.split("/");
  const trusted = new BlockList();
  if (base && bits) trusted.addSubnet(base, Number(bits));
  const address = ["192.168.77.7", "10.255.77.7", "172.31.255.7"].find((a) => !trusted.check(a));
  if (!address) throw new Error(`no private test address outside ${subnet}`);
  return address;
}

const docker = new DockerEngine().docker;

beforeAll(async () => {
  hosts = await startTestHosts(docker, image, `kiln.test-allow-${testRunLabel(import.meta.dirname)}`);
  engine = new DockerEngine(undefined, { firewallImage: async () => image, allowProxy: proxyOptions(hosts) });
  kiln = testKiln({ engine });
  sb = await sandbox(kiln, { network: { allow: ["allowed.test", "*.wild.test", "pypi.test", "tls.test"] } });
  await sb.files.write("/tmp/ca.pem", hosts.ca);
}, 300_000);

afterAll(async () => {
  // Our proxy goes with the test network it joined (its hash is this run's configuration).
  const proxy = await engine.allowNetworks.ensure().catch(() => undefined);
  await kiln.close();
  for (const c of await docker.listContainers({ all: true, filters: { label: [EGRESS_LABEL.holder] } })) {
    if (c.Labels["kiln.label.test-run"] === testRunLabel(import.meta.dirname)) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    }
  }
  if (proxy)
    await docker
      .getContainer(proxy.name)
      .remove({ force: true })
      .catch(() => {});
  await hosts?.close();
}, 120_000);

async function curl(s: Sandbox, url: string, extra = "") {
  return s.exec(`curl -sS --max-time 10 --cacert /tmp/ca.pem ${extra} '${url}'`, { timeoutMs: 30_000 });
}

describe("an allow-list sandbox", () => {
  it("reaches an allowed domain with curl, over HTTP and HTTPS (TLS checked end to end)", async () => {
    const plain = await curl(sb, "http://allowed.test/");
    expect(plain.stdout, plain.stderr).toBe("hello from allowed.test\n");
    const tls = await curl(sb, "https://tls.test/");
    expect(tls.stdout, tls.stderr).toBe("hello from tls.test\n");
    const log = await sb.networkLog();
    expect(log.filter((d) => d.allowed).map((d) => `${d.host}:${d.port}`)).toEqual(
      expect.arrayContaining(["allowed.test:80", "tls.test:443"]),
    );
    expect(log.find((d) => d.host === "allowed.test")?.reason).toBe('allowed by "allowed.test"');
  });

  it("refuses a domain not on the list with 403 and a reason naming the rule to add", async () => {
    const plain = await curl(sb, "http://denied.test/", "-i");
    expect(plain.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(plain.stdout).toContain('denied.test is not on this sandbox\'s network allow-list; add "denied.test"');
    const tls = await curl(sb, "https://denied.test/", "-v");
    expect(tls.exitCode).not.toBe(0);
    expect(tls.stderr).toMatch(/403/);
    const last = (await sb.networkLog()).filter((d) => d.host === "denied.test");
    expect(last.map((d) => [d.port, d.allowed])).toEqual([
      [80, false],
      [443, false],
    ]);
    expect(last[1]?.reason).toContain('add "denied.test" to network.allow');
  });

  it("matches a wildcard's subdomains, but not the bare domain or a look-alike", async () => {
    for (const host of ["sub.wild.test", "deep.sub.wild.test"]) {
      const r = await curl(sb, `http://${host}/`);
      expect(r.stdout, `${host}: ${r.stderr}`).toBe(`hello from ${host}\n`);
    }
    for (const host of ["wild.test", "evilwild.test"]) {
      const r = await curl(sb, `http://${host}/`, "-i");
      expect(r.stdout, host).toMatch(/^HTTP\/1\.1 403/);
    }
  });

  it("installs a package with pip from a local index (over HTTPS, through a CONNECT tunnel)", async () => {
    // Debian's pip wheel (python3-pip-whl, scripts/setup.sh test_hosts): the runtime image has no pip.
    const wheels = "/usr/share/python-wheels";
    const pip = (await readdir(wheels)).find((f) => /^pip-.*\.whl$/.test(f));
    if (!pip) throw new Error(`no pip wheel in ${wheels}: run scripts/setup.sh test_hosts`);
    const pipWheel = await readFile(`${wheels}/${pip}`);
    await sb.files.write("/tmp/pip.whl", pipWheel);
    const r = await sb.exec(
      "python3 /tmp/pip.whl/pip install --target /tmp/pylib --no-cache-dir --disable-pip-version-check --cert /tmp/ca.pem --index-url https://pypi.test/simple kilnpkg && PYTHONPATH=/tmp/pylib python3 -c 'import kilnpkg; print(kilnpkg.VALUE)'",
      { timeoutMs: 120_000 },
    );
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stdout.trim().split("\n").at(-1)).toBe("42");
  }, 180_000);

  it("works with Node's fetch (HTTP_PROXY honoured) and refuses a denied host there too", async () => {
    // Node's fetch tunnels http:// URLs through CONNECT too, so a refusal is a failed tunnel.
    const script = `
      const a = await (await fetch("https://tls.test/")).text();
      const b = await (await fetch("http://allowed.test/")).text();
      const c = await fetch("http://denied.test/").then((r) => String(r.status), (e) => [e.cause?.message, e.cause?.cause?.message].join(" "));
      console.log(JSON.stringify([a, b, c]));`;
    const r = await sb.exec(`NODE_EXTRA_CA_CERTS=/tmp/ca.pem node --input-type=module -e '${script}'`, {
      timeoutMs: 30_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const [a, b, c] = JSON.parse(r.stdout) as [string, string, string];
    expect(a).toBe("hello from tls.test\n");
    expect(b).toBe("hello from allowed.test\n");
    expect(c).toContain("403");
    expect((await sb.networkLog()).at(-1)?.reason).toContain('add "denied.test"');
  });

  it("refuses a name that resolves to a private, loopback or metadata address, whatever the rules say", async () => {
    await sb.setNetwork({ allow: ["internal.test", "loop.test", "meta.test", "169.254.169.254", "127.0.0.1"] });
    for (const url of ["http://internal.test/", "http://loop.test/", "http://meta.test/", "http://169.254.169.254/"]) {
      const r = await curl(sb, url, "-i");
      expect(r.stdout, url).toMatch(/^HTTP\/1\.1 403/);
      expect(r.stdout, url).toContain("special-purpose");
    }
    const log = await sb.networkLog();
    expect(log.find((d) => d.host === "internal.test")?.reason).toContain(
      `resolves to ${privateOutside(hosts.subnet)}`,
    );
  });

  it("resolves once and dials the address it checked (no DNS rebinding)", async () => {
    await sb.setNetwork({ allow: ["rebind.test"] });
    // First answer: the test host; every later one: 127.0.0.1. A proxy that resolved again to
    // connect would reach its own loopback here; Kiln's connects to what it checked.
    const first = await curl(sb, "http://rebind.test/");
    expect(first.stdout, first.stderr).toBe("hello from rebind.test\n");
    const second = await curl(sb, "http://rebind.test/", "-i");
    expect(second.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(second.stdout).toContain("resolves to 127.0.0.1");
    // One A query per connection: the check's.
    await sb.setNetwork({ allow: ["allowed.test"] });
    expect((await curl(sb, "http://allowed.test/dns-count/rebind.test")).stdout).toBe("2");
  });

  it("gets nowhere without the proxy: direct IP, raw UDP, DNS queries, IPv6, other ports", async () => {
    await sb.setNetwork({ allow: ["allowed.test"] });
    const proxy = await engine.allowNetworks.ensure();
    const probe = String.raw`
import json, socket, struct, sys
host, proxy = sys.argv[1], sys.argv[2]
def attempt(fn):
    try:
        return "reached: " + str(fn())
    except Exception as e:
        return f"{type(e).__name__}: {e}"
def tcp(addr, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(3); s.connect((addr, port)); s.close(); return port
def udp(addr, port, payload=b"kiln"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(payload, (addr, port)); return s.recvfrom(512)
q = struct.pack("!HHHHHH", 0x4b1e, 0x0100, 1, 0, 0, 0) + b"\x07allowed\x04test\x00" + struct.pack("!HH", 1, 1)
print(json.dumps({
  "tcp80": attempt(lambda: tcp(host, 80)),
  "tcp443": attempt(lambda: tcp(host, 443)),
  "udp": attempt(lambda: udp(host, 5353)),
  "dns-host": attempt(lambda: udp(host, 53, q)),
  "dns-engine": attempt(lambda: udp("127.0.0.11", 53, q)),
  "dns-tcp": attempt(lambda: tcp(host, 53)),
  "resolve": attempt(lambda: socket.getaddrinfo("allowed.test", 80)),
  "ipv6": attempt(lambda: tcp("2001:db8::1", 80, socket.AF_INET6)),
  "proxy-other-port": attempt(lambda: tcp(proxy, 22)),
  "proxy-udp": attempt(lambda: udp(proxy, 3128)),
  "proxy": attempt(lambda: tcp(proxy, 3128)),
}))`;
    const r = await sb.exec(`python3 - ${hosts.address} ${proxy.address} <<'EOF'\n${probe}\nEOF`, {
      timeoutMs: 60_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, string>;
    for (const [k, v] of Object.entries(result)) {
      if (k === "proxy") expect(v, k).toBe("reached: 3128");
      else expect(v, k).not.toMatch(/^reached/);
    }
  });

  it("refuses a CONNECT tunnel whose TLS server name is not the CONNECT host", async () => {
    await sb.setNetwork({ allow: ["tls.test"] });
    const r = await sb.exec(`python3 - <<'EOF'\n${SNI_MISMATCH_PROBE}\nEOF`, { timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { same: string; other: string };
    expect(result.same).toBe("HTTP/1.1 200 Connection Established | hello from tls.test\n");
    expect(result.other).toMatch(/^HTTP\/1\.1 200 Connection Established \| (SSL|ConnectionReset|OSError|EOF)/);
    const log = await sb.networkLog();
    expect(log.at(-1)?.reason).toBe('kiln: TLS server name "other.test" does not match CONNECT host "tls.test"');
  });

  it("applies a policy update to the next connection, and 'none' denies everything", async () => {
    await sb.setNetwork({ allow: ["allowed.test"] });
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
    expect((await curl(sb, "http://denied.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
    await sb.setNetwork({ allow: ["denied.test"] });
    expect((await curl(sb, "http://denied.test/")).stdout).toBe("hello from denied.test\n");
    expect((await curl(sb, "http://allowed.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
    await sb.setNetwork("none");
    const none = await curl(sb, "http://denied.test/", "-i");
    expect(none.stdout).toContain('network is "none"');
    await expect(sb.setNetwork("egress")).rejects.toThrow(NotSupportedError);
    await sb.setNetwork({ allow: ["allowed.test"] });
  });

  it("keeps its policy across a stop and start", async () => {
    await sb.stop();
    await sb.start();
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
    expect((await curl(sb, "http://denied.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
  });

  it("a none sandbox cannot switch modes in place, and says why", async () => {
    const none = await sandbox(kiln, {});
    await expect(none.setNetwork({ allow: ["allowed.test"] })).rejects.toThrow(/fixes a container's network namespace/);
    await none.setNetwork("none");
    expect(await none.networkLog()).toEqual([]);
    await none.delete();
  });
});

describe("the proxy's lifecycle", () => {
  it("is found again by a second Kiln (same configuration: same container)", async () => {
    const first = await engine.allowNetworks.ensure();
    const second = await new DockerEngine(undefined, {
      firewallImage: async () => image,
      allowProxy: proxyOptions(hosts),
    }).allowNetworks.ensure();
    expect(second).toEqual(first);
    const found = await docker.listContainers({ all: true, filters: { name: [first.name] } });
    expect(found).toHaveLength(1);
  });

  it("survives hostile requests from a sandbox (it serves every allow-list sandbox)", async () => {
    const proxy = await engine.allowNetworks.ensure();
    const before = (await docker.getContainer(proxy.name).inspect()).RestartCount;
    const r = await sb.exec(`python3 - <<'EOF'\n${HOSTILE_PROXY_REQUESTS}\nEOF`, { timeoutMs: 120_000 });
    expect(r.stdout, r.stderr).toBe("sent\n");
    await sb.setNetwork({ allow: ["allowed.test"] });
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
    expect((await docker.getContainer(proxy.name).inspect()).RestartCount).toBe(before);
  }, 180_000);

  it("fails closed while it is dead and works again once it is back", async () => {
    const proxy = await engine.allowNetworks.ensure();
    const container = docker.getContainer(proxy.name);
    // A crash (kill -9 of its process): the engine restarts it.
    const before = await container.inspect();
    process.kill(before.State.Pid, "SIGKILL");
    for (let i = 0; i < 100; i++) {
      const s = (await container.inspect()).State;
      if (s.Running && s.Pid !== before.State.Pid) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    let back = "";
    for (let i = 0; i < 50 && back !== "hello from allowed.test\n"; i++) {
      back = (await curl(sb, "http://allowed.test/")).stdout;
      if (back !== "hello from allowed.test\n") await new Promise((r) => setTimeout(r, 200));
    }
    expect(back).toBe("hello from allowed.test\n");
    expect((await container.inspect()).RestartCount).toBeGreaterThan(before.RestartCount);
    // Stopped for good (docker kill: the engine does not restart it): nothing gets out at all.
    await container.kill();
    const dead = await curl(sb, "http://allowed.test/", "--max-time 5");
    expect(dead.exitCode).not.toBe(0);
    expect(dead.stdout).toBe("");
    // Kiln brings it back on its next touch of an allow-list sandbox (here: setNetwork).
    await sb.setNetwork({ allow: ["allowed.test"] });
    expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
  }, 120_000);

  it("is removed by the sweeper once no holder uses it", async () => {
    const proxy = await engine.allowNetworks.ensure();
    const other = await sandbox(kiln, { network: { allow: [] } });
    await other.delete();
    await sb.delete();
    // Deleting a sandbox removed its holder; the proxy goes past its grace period.
    expect(await engine.allowNetworks.reclaim(Date.now(), proxy.name)).toEqual([]);
    const later = Date.now() + 3 * 60_000;
    const removed = await engine.allowNetworks.reclaim(later, proxy.name);
    expect(removed).toHaveLength(1);
    await expect(docker.getContainer(proxy.name).inspect()).rejects.toMatchObject({ statusCode: 404 });
  }, 120_000);
});
