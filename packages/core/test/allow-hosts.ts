// Test "internet" hosts for allow-list tests and the proxy benchmark: one container on a Docker
// network made here (never any address outside this machine), answering under several names
// (network aliases), with an HTTPS server whose certificate comes from a CA made here with
// openssl. Kiln's proxy joins that network and trusts its subnet (test-only proxy settings).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { BlockList } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import type Dockerode from "dockerode";
import { pack } from "tar-stream";

const run = promisify(execFile);

export const TEST_HOST_NAMES = [
  "allowed.test",
  "denied.test",
  "wild.test",
  "sub.wild.test",
  "deep.sub.wild.test",
  "evilwild.test",
  "pypi.test",
  "tls.test",
  "other.test",
  "rebind.test",
];

export interface TestHosts {
  network: string;
  subnet: string;
  /** The test host's address on its network. */
  address: string;
  /** The test CA's certificate (PEM). */
  ca: string;
  close(): Promise<void>;
}

async function makeCerts(): Promise<{ ca: string; cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-allow-ca-"));
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      join(dir, "ca.key"),
      "-out",
      join(dir, "ca.pem"),
      "-days",
      "2",
      "-subj",
      "/CN=kiln-test-ca",
    ]);
    await run("openssl", [
      "req",
      ...ec,
      "-keyout",
      join(dir, "server.key"),
      "-out",
      join(dir, "server.csr"),
      "-subj",
      "/CN=tls.test",
    ]);
    // other.test is in the certificate on purpose: only the proxy's SNI check stops a tunnel
    // opened for tls.test from carrying a handshake for other.test.
    await writeFile(join(dir, "ext"), "subjectAltName=DNS:tls.test,DNS:other.test,DNS:allowed.test,DNS:pypi.test\n");
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      join(dir, "server.csr"),
      "-CA",
      join(dir, "ca.pem"),
      "-CAkey",
      join(dir, "ca.key"),
      "-CAcreateserial",
      "-out",
      join(dir, "server.pem"),
      "-days",
      "2",
      "-extfile",
      join(dir, "ext"),
    ]);
    const [ca, cert, key] = await Promise.all(
      ["ca.pem", "server.pem", "server.key"].map((f) => readFile(join(dir, f), "utf8")),
    );
    return { ca: ca as string, cert: cert as string, key: key as string };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A private address outside the trusted test subnet (the proxy must refuse it, trusted or not):
 * the engine picks that subnet from its pools (172.16/12, then 192.168/16 in /20s once many
 * networks exist), so a fixed choice could fall inside it and be dialled as trusted.
 */
export function privateOutside(subnet: string): string {
  const [base, bits] = subnet.split("/");
  const trusted = new BlockList();
  if (base && bits) trusted.addSubnet(base, Number(bits));
  const address = ["192.168.77.7", "10.255.77.7", "172.31.255.7"].find((a) => !trusted.check(a));
  if (!address) throw new Error(`no private test address outside ${subnet}`);
  return address;
}

/**
 * `onNetwork`: put the host on that existing network (kube-sim's, for @kiln/kubernetes' tests)
 * instead of a network of its own; it is left in place by close().
 */
export async function startTestHosts(
  docker: Dockerode,
  image: string,
  label: string,
  onNetwork?: string,
): Promise<TestHosts> {
  const network = onNetwork ?? `kiln-test-allow-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  const [{ ca, cert, key }, program] = await Promise.all([
    makeCerts(),
    readFile(new URL("./fixtures/allow-test-host.py", import.meta.url), "utf8"),
  ]);
  const net = onNetwork
    ? docker.getNetwork(onNetwork)
    : await docker.createNetwork({ Name: network, Driver: "bridge", Labels: { [label]: "1" } });
  let container: Dockerode.Container | undefined;
  const close = async () => {
    await container?.remove({ force: true }).catch(() => {});
    if (!onNetwork) await net.remove().catch(() => {});
  };
  try {
    container = await docker.createContainer({
      name: onNetwork
        ? `kiln-test-allow-${process.pid}-${Math.random().toString(36).slice(2, 6)}-host`
        : `${network}-host`,
      Image: image,
      User: "0:0",
      Entrypoint: ["python3", "-u", "/opt/test-host.py"],
      Cmd: [],
      Labels: { [label]: "1" },
      // On a shared network no aliases: its other containers (pods) must not resolve the names locally.
      NetworkingConfig: { EndpointsConfig: { [network]: onNetwork ? {} : { Aliases: TEST_HOST_NAMES } } },
      HostConfig: { NetworkMode: network },
    });
    const archive = pack();
    archive.entry({ name: "opt/test-host.py", mode: 0o644 }, program);
    archive.entry({ name: "certs/server.pem", mode: 0o644 }, cert);
    archive.entry({ name: "certs/server.key", mode: 0o600 }, key);
    archive.finalize();
    await container.putArchive(Readable.from(archive), { path: "/" });
    await container.start();
    for (let i = 0; ; i++) {
      const logs = (await container.logs({ stdout: true, stderr: true })).toString("utf8");
      if (logs.includes("test-host-ready")) break;
      const state = (await container.inspect()).State;
      if (!state.Running || i > 200) throw new Error(`test host did not start: ${logs.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const inspected = await container.inspect();
    const address = inspected.NetworkSettings.Networks[network]?.IPAddress ?? "";
    const subnet = ((await net.inspect()) as { IPAM: { Config: { Subnet: string }[] } }).IPAM.Config[0]?.Subnet ?? "";
    return { network, subnet, address, ca, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Python run in an allow-list sandbox (allowed: tls.test): two CONNECT tunnels to tls.test:443
 * through HTTPS_PROXY, one whose TLS server name matches and one that says other.test; prints
 * `{"same": ..., "other": ...}`, each "<CONNECT status line> | <answer or error>".
 */
export const SNI_MISMATCH_PROBE = String.raw`
import json, os, socket, ssl, sys
proxy = os.environ["HTTPS_PROXY"].split("//")[1].rstrip("/")
host, port = proxy.split(":")
def tunnel(sni):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"CONNECT tls.test:443 HTTP/1.1\r\nHost: tls.test:443\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    ctx = ssl.create_default_context(cafile="/tmp/ca.pem")
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\nConnection: close\r\n\r\n")
        body = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                break
            body += chunk
        return head.split(b"\r\n")[0].decode() + " | " + body.decode(errors="replace").split("\r\n")[-1]
    except Exception as e:
        return head.split(b"\r\n")[0].decode() + " | " + f"{type(e).__name__}: {e}"
print(json.dumps({"same": tunnel("tls.test"), "other": tunnel("other.test")}))`;

/** Python that sends the proxy malformed and hostile requests, each on its own connection; prints "sent". */
export const HOSTILE_PROXY_REQUESTS = String.raw`
import os, socket
host, port = os.environ["HTTP_PROXY"].split("//")[1].rstrip("/").split(":")
for raw in [b"CONNECT \xff\xfe:443 HTTP/1.1\r\n\r\n", b"CONNECT a:99999 HTTP/1.1\r\n\r\n", b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"GET http://ex\xc3\xa4mple.test/ HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"A" * 70000,
            b"CONNECT allowed.test:80 HTTP/1.1\r\n\r\n\x16\x03\x01\x00\x05\x01\x00\x00\xff\xff", b"GET http://[::1/ HTTP/1.1\r\n\r\n"]:
    s = socket.create_connection((host, int(port)), timeout=5)
    try:
        s.sendall(raw)
        s.recv(4096)
    except Exception:
        pass
    s.close()
print("sent")`;
