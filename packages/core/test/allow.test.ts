// Network allow-lists (issue 13) against the real Docker engine: Kiln's egress proxy, the
// allow-list holder's filter, and test "internet" hosts on a Docker network this file makes
// (allow-hosts.ts); no traffic leaves this machine. The cases every engine meets are the
// contract's (allow-contract.ts, also run on Kubernetes); the Docker proxy's lifecycle is here.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import type { Sandbox } from "../src/index.ts";
import { allowListContract, CONTRACT_ALLOW, curl, pinnedTestNames } from "./allow-contract.ts";
import { startTestHosts, type TestHosts } from "./allow-hosts.ts";
import { deleteTestSandboxes, sandbox, testKiln } from "./helpers.ts";
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
  return { networks: [h.network], trust: [h.subnet], resolver: h.address, hosts: pinnedTestNames(h) };
}

const docker = new DockerEngine().docker;

beforeAll(async () => {
  hosts = await startTestHosts(docker, image, `kiln.test-allow-${testRunLabel(import.meta.dirname)}`);
  engine = new DockerEngine(undefined, { firewallImage: async () => image, allowProxy: proxyOptions(hosts) });
  kiln = testKiln({ engine });
  sb = await sandbox(kiln, { network: { allow: CONTRACT_ALLOW } });
  await sb.files.write("/tmp/ca.pem", hosts.ca);
}, 300_000);

afterAll(async () => {
  // Our proxy goes with the test network it joined (its hash is this run's configuration), once
  // this file's sandboxes are gone (only this file's: other files of this checkout run beside it).
  const proxy = await engine.allowNetworks.ensure().catch(() => undefined);
  await deleteTestSandboxes();
  await kiln.close();
  if (proxy)
    await docker
      .getContainer(proxy.name)
      .remove({ force: true })
      .catch(() => {});
  await hosts?.close();
}, 120_000);

allowListContract(() => ({
  hosts,
  sb,
  create: (options) => sandbox(kiln, options),
  proxyAddress: async () => (await engine.allowNetworks.ensure()).address,
  proxyRestarts: async () =>
    (await docker.getContainer((await engine.allowNetworks.ensure()).name).inspect()).RestartCount,
  modeIsFixed: /fixes a container's network namespace/,
}));

// Docker only: its proxy is one container per configuration, shared by every allow-list sandbox
// of every Kiln on this engine, restarted by the engine's restart policy and brought back by
// Kiln; the Kubernetes engine's proxy is a ReplicaSet with its own cases (egress-proxy.test.ts).
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
