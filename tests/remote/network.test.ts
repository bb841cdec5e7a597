// Allow-lists through a real Kiln server (issue 13): PUT /v1/sandboxes/{id}/network and
// GET …/network/log via the remote client. The server's Kiln uses an engine whose proxy reaches
// this file's own test hosts (a Docker network made here; see packages/core/test/allow-hosts.ts).
import { Kiln, NotSupportedError, type Sandbox } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine } from "../../packages/core/src/engine/docker/docker-engine.ts";
import { startTestHosts, type TestHosts } from "../../packages/core/test/allow-hosts.ts";
import { TEST_LABELS } from "./helpers.ts";
import { type TestServer, testServer } from "./server.ts";

let hosts: TestHosts;
let engine: DockerEngine;
let local: Kiln;
let server: TestServer;
let remote: Kiln;
let sb: Sandbox;

beforeAll(async () => {
  let image = "";
  engine = new DockerEngine(undefined, { firewallImage: async () => image });
  local = new Kiln({ engine });
  image = await local.images.ensure();
  hosts = await startTestHosts(engine.docker, image, "kiln.test-allow-remote");
  engine = new DockerEngine(undefined, {
    firewallImage: async () => image,
    allowProxy: { networks: [hosts.network], trust: [hosts.subnet] },
  });
  await local.close();
  local = new Kiln({ engine, image });
  server = await testServer({ kiln: local });
  remote = new Kiln({ url: server.url, apiKey: server.apiKey });
  sb = await remote.create({ labels: TEST_LABELS, network: { allow: ["allowed.test"] } });
}, 300_000);

afterAll(async () => {
  const proxy = await engine?.allowNetworks.ensure().catch(() => undefined);
  await sb?.delete().catch(() => {});
  await remote?.close();
  await server?.close();
  await local?.close();
  if (proxy)
    await engine.docker
      .getContainer(proxy.name)
      .remove({ force: true })
      .catch(() => {});
  await hosts?.close();
}, 120_000);

describe("allow-lists through the server", () => {
  it("creates, updates in place, reports the policy in force and the proxy's decisions", async () => {
    const curl = (url: string) => sb.exec(`curl -s --max-time 10 -o /dev/null -w '%{http_code}' ${url}`);
    expect((await curl("http://allowed.test/")).stdout).toBe("200");
    expect((await curl("http://denied.test/")).stdout).toBe("403");
    expect((await sb.info()).network).toEqual({ allow: ["allowed.test"] });

    await sb.setNetwork({ allow: ["denied.test", "pypi"] });
    expect((await sb.info()).network).toEqual({ allow: ["denied.test", "pypi.org", "files.pythonhosted.org"] });
    expect((await curl("http://denied.test/")).stdout).toBe("200");
    expect((await curl("http://allowed.test/")).stdout).toBe("403");

    const log = await sb.networkLog();
    expect(log.map((d) => [d.host, d.allowed])).toEqual([
      ["allowed.test", true],
      ["denied.test", false],
      ["denied.test", true],
      ["allowed.test", false],
    ]);
    expect(log[3]?.reason).toContain('add "allowed.test" to network.allow');
  });

  it("refuses what cannot be done in place, and bad rules, with the server's error", async () => {
    await expect(sb.setNetwork("egress")).rejects.toThrow(NotSupportedError);
    await expect(sb.setNetwork({ allow: ["not a host"] })).rejects.toThrow(/network\.allow\[0\]/);
  });
});
