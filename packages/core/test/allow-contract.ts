// The network allow-list contract: what a sandbox created with network: { allow: [...] } may
// and may not reach, written once and run against every engine. packages/core/test/allow.test.ts
// runs it on the Docker engine, packages/kubernetes/test/egress-proxy.test.ts on the Kubernetes
// engine against kube-sim. Each file sets up its engine's proxy and the test hosts
// (allow-hosts.ts), and keeps the cases only its engine has (its proxy's lifecycle, its
// internals) beside this call.
import { readdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { type CreateSandboxOptions, NotSupportedError, type Sandbox } from "../src/index.ts";
import { HOSTILE_PROXY_REQUESTS, privateOutside, SNI_MISMATCH_PROBE, type TestHosts } from "./allow-hosts.ts";

/** The rules the contract's sandbox is created with. */
export const CONTRACT_ALLOW = ["allowed.test", "*.wild.test", "pypi.test", "tls.test"];

/**
 * The proxy's test-only resolver pins: names resolving to special-purpose addresses. Each
 * engine's test passes these to its proxy settings (`privateOutside` of the trusted subnet).
 */
export function pinnedTestNames(hosts: TestHosts): Record<string, string> {
  return { "internal.test": privateOutside(hosts.subnet), "loop.test": "127.0.0.1", "meta.test": "169.254.169.254" };
}

/** What a contract run needs of its engine; read after the file's beforeAll. */
export interface AllowListFixture {
  hosts: TestHosts;
  /** A sandbox created with network: { allow: CONTRACT_ALLOW }, the test CA at /tmp/ca.pem. */
  sb: Sandbox;
  /** Creates another sandbox on the same engine (deleted by the caller or after the file). */
  create(options: CreateSandboxOptions): Promise<Sandbox>;
  /** The address of the proxy sandbox `s` goes through. */
  proxyAddress(s: Sandbox): Promise<string>;
  /** How often that proxy has restarted (a crash shows as a restart). */
  proxyRestarts(s: Sandbox): Promise<number>;
  /** Further addresses only this engine has that a sandbox must not reach directly. */
  moreUnreachable?(s: Sandbox): Promise<Record<string, Probe>>;
  /** The message of setNetwork from "none" or "egress" to an allow-list (each engine says why). */
  modeIsFixed: RegExp;
}

/**
 * A direct connection attempt from inside a sandbox. "dns": a query for allowed.test (a name only
 * the test host's DNS knows), any answer counts as reached.
 */
export type Probe = [kind: "tcp" | "tcp6" | "udp" | "dns", address: string, port: number];

const PROBE = String.raw`
import json, socket, struct, sys
def tcp(addr, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(3); s.connect((addr, port)); s.close(); return port
def udp(addr, port, payload=b"kiln"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(payload, (addr, port)); return s.recvfrom(512)
q = struct.pack("!HHHHHH", 0x4b1e, 0x0100, 1, 0, 0, 0) + b"\x07allowed\x04test\x00" + struct.pack("!HH", 1, 1)
kinds = {
  "tcp": lambda a, p: tcp(a, p),
  "tcp6": lambda a, p: tcp(a, p, socket.AF_INET6),
  "udp": lambda a, p: udp(a, p),
  "dns": lambda a, p: udp(a, p, q),
  "resolve": lambda a, p: socket.getaddrinfo(a, p),
}
def attempt(kind, addr, port):
    try:
        return "reached: " + str(kinds[kind](addr, port))
    except Exception as e:
        return f"{type(e).__name__}: {e}"
print(json.dumps({k: attempt(*v) for k, v in json.loads(sys.argv[1]).items()}))`;

/** curl in sandbox `s`, trusting the test CA (written to /tmp/ca.pem by each engine's test). */
export async function curl(s: Sandbox, url: string, extra = "") {
  return s.exec(`curl -sS --max-time 10 --cacert /tmp/ca.pem ${extra} '${url}'`, { timeoutMs: 30_000 });
}

/** The contract's cases, in order (they share `sb` and change its rules); `f` is read in each case. */
export function allowListContract(fixture: () => AllowListFixture): void {
  describe("an allow-list sandbox (the contract every engine meets)", () => {
    it("reaches an allowed domain with curl, over HTTP and HTTPS (TLS checked end to end), and logs it", async () => {
      const { sb } = fixture();
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

    it("refuses a domain not on the list with 403 and a reason naming the rule to add, and a raw IP", async () => {
      const { sb, hosts } = fixture();
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
      // The test host's address, asked for literally: not on the list either.
      const ip = await curl(sb, `http://${hosts.address}/`, "-i");
      expect(ip.stdout).toMatch(/^HTTP\/1\.1 403/);
      expect((await sb.networkLog()).at(-1)).toMatchObject({ host: hosts.address, allowed: false });
    });

    it("matches a wildcard's subdomains, but not the bare domain or a look-alike", async () => {
      const { sb } = fixture();
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
      const { sb } = fixture();
      // Debian's pip wheel (python3-pip-whl, scripts/setup.sh test_hosts): the runtime image has no pip.
      const wheels = "/usr/share/python-wheels";
      const pip = (await readdir(wheels)).find((f) => /^pip-.*\.whl$/.test(f));
      if (!pip) throw new Error(`no pip wheel in ${wheels}: run scripts/setup.sh test_hosts`);
      await sb.files.write("/tmp/pip.whl", await readFile(`${wheels}/${pip}`));
      const r = await sb.exec(
        "python3 /tmp/pip.whl/pip install --target /tmp/pylib --no-cache-dir --disable-pip-version-check --cert /tmp/ca.pem --index-url https://pypi.test/simple kilnpkg && PYTHONPATH=/tmp/pylib python3 -c 'import kilnpkg; print(kilnpkg.VALUE)'",
        { timeoutMs: 120_000 },
      );
      expect(r.exitCode, r.stderr + r.stdout).toBe(0);
      expect(r.stdout.trim().split("\n").at(-1)).toBe("42");
    }, 180_000);

    it("works with Node's fetch (the proxy variables honoured) and refuses a denied host there too", async () => {
      const { sb } = fixture();
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
      const { sb, hosts } = fixture();
      await sb.setNetwork({ allow: ["internal.test", "loop.test", "meta.test", "169.254.169.254", "127.0.0.1"] });
      for (const url of [
        "http://internal.test/",
        "http://loop.test/",
        "http://meta.test/",
        "http://169.254.169.254/",
        "http://127.0.0.1/",
      ]) {
        const r = await curl(sb, url, "-i --noproxy ''");
        expect(r.stdout, url).toMatch(/^HTTP\/1\.1 403/);
        expect(r.stdout, url).toContain("special-purpose");
      }
      const log = await sb.networkLog();
      expect(log.find((d) => d.host === "internal.test")?.reason).toContain(
        `resolves to ${privateOutside(hosts.subnet)}`,
      );
    });

    it("resolves once and dials the address it checked (no DNS rebinding)", async () => {
      const { sb } = fixture();
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

    it("gets nowhere without the proxy: direct IP, raw UDP, DNS queries, IPv6, metadata, other ports", async () => {
      const f = fixture();
      const { sb, hosts } = f;
      await sb.setNetwork({ allow: ["allowed.test"] });
      const proxy = await f.proxyAddress(sb);
      const host = hosts.address;
      // Another allow-list sandbox, listening: a way around the proxy's per-sandbox rules.
      await using other = await f.create({ network: { allow: [] } });
      // The listener runs in an exec of its own, held for the case's length and checked before
      // and after the probe: an unreachable listener is the filter's doing, not a dead server.
      const server = other.exec("exec timeout 100 python3 -m http.server 8080", { timeoutMs: 110_000 });
      server.catch(() => {});
      const otherIp = (await other.exec("hostname -i")).stdout.trim().split(/\s+/)[0] ?? "";
      // Its own policy may keep it off its own address: it checks its listener over loopback.
      const listening = () =>
        other.exec(
          `for i in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 8080), 1)" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
        );
      const started = await listening();
      expect(started.exitCode, `other sandbox at ${otherIp} not listening`).toBe(0);
      const targets: Record<string, Probe | ["resolve", string, number]> = {
        tcp80: ["tcp", host, 80],
        tcp443: ["tcp", host, 443],
        udp: ["udp", host, 5353],
        "dns-host": ["dns", host, 53],
        "dns-local": ["dns", "127.0.0.11", 53],
        "dns-tcp": ["tcp", host, 53],
        resolve: ["resolve", "allowed.test", 80],
        ipv6: ["tcp6", "2001:db8::1", 80],
        metadata: ["tcp", "169.254.169.254", 80],
        "proxy-other-port": ["tcp", proxy, 22],
        "proxy-udp": ["udp", proxy, 3128],
        "other-sandbox": ["tcp", otherIp, 8080],
        ...(await f.moreUnreachable?.(sb)),
        proxy: ["tcp", proxy, 3128],
      };
      const r = await sb.exec(`python3 - '${JSON.stringify(targets)}' <<'EOF'\n${PROBE}\nEOF`, { timeoutMs: 90_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as Record<string, string>;
      expect(Object.keys(result)).toEqual(Object.keys(targets));
      expect((await listening()).exitCode, "the other sandbox stopped listening").toBe(0);
      await other.exec("pkill -f http.server");
      await server;
      for (const [k, v] of Object.entries(result)) {
        if (k === "proxy") expect(v, k).toBe("reached: 3128");
        else expect(v, k).not.toMatch(/^reached/);
      }
    }, 120_000);

    it("refuses a CONNECT tunnel whose TLS server name is not the CONNECT host", async () => {
      const { sb } = fixture();
      await sb.setNetwork({ allow: ["tls.test"] });
      const r = await sb.exec(`python3 - <<'EOF'\n${SNI_MISMATCH_PROBE}\nEOF`, { timeoutMs: 60_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as { same: string; other: string };
      expect(result.same).toBe("HTTP/1.1 200 Connection Established | hello from tls.test\n");
      expect(result.other).toMatch(/^HTTP\/1\.1 200 Connection Established \| (SSL|ConnectionReset|OSError|EOF)/);
      expect((await sb.networkLog()).at(-1)?.reason).toBe(
        'kiln: TLS server name "other.test" does not match CONNECT host "tls.test"',
      );
    });

    it("applies setNetwork to the next connection; 'none' denies everything; the mode is fixed", async () => {
      const { sb } = fixture();
      await sb.setNetwork({ allow: ["allowed.test"] });
      expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
      expect((await curl(sb, "http://denied.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
      await sb.setNetwork({ allow: ["denied.test"] });
      expect((await curl(sb, "http://denied.test/")).stdout).toBe("hello from denied.test\n");
      expect((await curl(sb, "http://allowed.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
      expect((await sb.info()).network).toEqual({ allow: ["denied.test"] });
      await sb.setNetwork("none");
      expect((await curl(sb, "http://denied.test/", "-i")).stdout).toContain('network is "none"');
      expect((await sb.info()).network).toBe("none");
      await expect(sb.setNetwork("egress")).rejects.toThrow(NotSupportedError);
      await sb.setNetwork({ allow: ["allowed.test"] });
      expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
    });

    it("none and egress sandboxes cannot use the proxy, and cannot switch to an allow-list", async () => {
      const f = fixture();
      const proxy = await f.proxyAddress(f.sb);
      for (const network of ["none", "egress"] as const) {
        await using s = await f.create({ network });
        const r = await s.exec(
          `python3 -c "import socket; s=socket.socket(); s.settimeout(3); s.connect(('${proxy}', 3128)); print('reached')"`,
        );
        expect(r.stdout, network).not.toContain("reached");
        await expect(s.setNetwork({ allow: ["allowed.test"] })).rejects.toThrow(f.modeIsFixed);
        await s.setNetwork(network);
        expect(await s.networkLog()).toEqual([]);
      }
    }, 120_000);

    it("the proxy survives hostile requests from a sandbox (it serves every allow-list sandbox)", async () => {
      const f = fixture();
      const before = await f.proxyRestarts(f.sb);
      const r = await f.sb.exec(`python3 - <<'EOF'\n${HOSTILE_PROXY_REQUESTS}\nEOF`, { timeoutMs: 120_000 });
      expect(r.stdout, r.stderr).toBe("sent\n");
      expect((await curl(f.sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
      expect(await f.proxyRestarts(f.sb)).toBe(before);
    }, 180_000);

    it("keeps its policy across a stop and start", async () => {
      const { sb, hosts } = fixture();
      await sb.stop();
      await sb.start();
      // Only /workspace outlives a stop everywhere (Kubernetes starts a new pod): the CA again.
      await sb.files.write("/tmp/ca.pem", hosts.ca);
      expect((await curl(sb, "http://allowed.test/")).stdout).toBe("hello from allowed.test\n");
      expect((await curl(sb, "http://denied.test/", "-i")).stdout).toMatch(/^HTTP\/1\.1 403/);
      expect((await sb.info()).network).toEqual({ allow: ["allowed.test"] });
    }, 180_000);
  });
}
