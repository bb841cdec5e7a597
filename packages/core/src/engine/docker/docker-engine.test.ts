import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterEach, describe, expect, it } from "vitest";
import { describeTarget } from "./docker-engine.ts";

describe("describeTarget", () => {
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it("names the default socket, not the function dockerode keeps for it", () => {
    delete process.env.DOCKER_HOST;
    const user = join(homedir(), ".docker", "run", "docker.sock");
    expect(describeTarget(new Dockerode())).toBe(existsSync(user) ? user : "/var/run/docker.sock");
  });

  it("names an explicit socket, DOCKER_HOST's socket, and a TCP host", () => {
    expect(describeTarget(new Dockerode({ socketPath: "/tmp/x.sock" }))).toBe("/tmp/x.sock");
    process.env.DOCKER_HOST = "unix:///run/other.sock";
    expect(describeTarget(new Dockerode())).toBe("/run/other.sock");
    expect(describeTarget(new Dockerode({ host: "10.0.0.5", port: 2375 }))).toBe("http://10.0.0.5:2375");
  });
});
