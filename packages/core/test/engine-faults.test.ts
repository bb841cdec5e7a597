// What the engine and the host process can do to Kiln (issue 8, defects 7, 9, 10, 11; issue 21.4):
// a pool member that died, a create whose process was killed, an engine that stops answering,
// limits the host cannot honour. All against the real engine; the shared dockerd is never stopped.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import type { ContainerSummary } from "../src/engine/engine.ts";
import { EngineUnavailableError, InvalidArgumentError, Kiln } from "../src/index.ts";
import { processOwner } from "../src/sweeper.ts";
import { EngineProxy } from "./engine-proxy.ts";
import { sandbox, TEST_LABELS, testKiln } from "./helpers.ts";

describe("engine outage", () => {
  const dir = mkdtemp(join(tmpdir(), "kiln-proxy-"));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));

  it("calls on an existing sandbox say EngineUnavailableError with the socket path, and work again after", async () => {
    const proxy = new EngineProxy(join(await dir, "docker.sock"));
    await proxy.start();
    const kiln = testKiln({ docker: { socketPath: proxy.path } });
    const sb = await sandbox(kiln);
    expect((await sb.exec("echo up")).stdout).toBe("up\n");

    await proxy.stop();
    await new Promise((r) => setTimeout(r, 100)); // let the dropped agent connection close
    const calls: [string, () => Promise<unknown>][] = [
      ["exec", () => sb.exec("echo hi")],
      ["runCode", () => sb.runCode("1 + 1")],
      ["files.readText", () => sb.files.readText("/etc/hostname")],
      ["info", () => sb.info()],
      ["get", () => kiln.get(sb.id)],
      ["stop", () => sb.stop()],
    ];
    for (const [what, call] of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, what).toBeInstanceOf(EngineUnavailableError);
      expect((error as Error).message, what).toContain(`No Docker engine at ${proxy.path}`);
      expect((error as Error).message, what).not.toMatch(/function|=>/);
    }

    await proxy.start();
    expect((await sb.exec("echo back")).stdout).toBe("back\n");
    await sb.delete();
    await proxy.stop();
  });
});

describe("warm pool after its members die", () => {
  const kiln = testKiln({ pool: { size: 1 } });

  it("discards a dead member at claim and serves the request anyway", async () => {
    await kiln.pool?.filled();
    const members = (await kiln.engine.listContainers({ "kiln.kind": "pool", "kiln.owner": processOwner() })).filter(
      (c) => c.name.startsWith("kiln-pool-") && c.status === "running",
    );
    expect(members.length).toBeGreaterThan(0);
    // What an engine restart does to every member: its processes die. Here, through the engine.
    for (const m of members) await kiln.engine.stopContainer(m.id, 0);

    const sb = await sandbox(kiln);
    expect(members.map((m) => m.id)).not.toContain(sb.id);
    expect((await sb.exec("echo served")).stdout).toBe("served\n");
    for (const m of members) expect(await kiln.engine.inspectContainer(m.id)).toBeUndefined();
  });
});

describe("orphans of killed processes", () => {
  const kiln = testKiln();

  it("sweeps an unnamed sandbox whose creating process was killed mid-create", { timeout: 120_000 }, async () => {
    /** Starts a child's cold create and SIGKILLs the child as soon as its container exists. */
    const killMidCreate = async () => {
      const marker = `midcreate-${process.pid}-${Date.now()}`;
      const script = fileURLToPath(new URL("./fixtures/create-child.ts", import.meta.url));
      const child = spawn(process.execPath, [script, marker, inject("runtimeImage")], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((r) => child.once("exit", r));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          if (String(c).includes("READY")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`create child exited early with ${code}`)));
      });
      let found: ContainerSummary | undefined;
      for (let i = 0; i < 500 && !found; i++) {
        found = (await kiln.engine.listContainers({ "kiln.label.marker": marker }))[0];
        if (!found) await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGKILL");
      await exited;
      return { found, pid: child.pid };
    };
    // Under heavy load the child's own create can fail first (and clean up after itself): then
    // there is no orphan to test, so try again.
    let attempt = await killMidCreate();
    for (let i = 0; i < 3 && attempt.found && !(await kiln.engine.inspectContainer(attempt.found.id)); i++) {
      attempt = await killMidCreate();
    }
    const { found, pid } = attempt;
    expect(found, "the child's container never appeared").toBeDefined();
    const orphan = found as ContainerSummary;
    expect(orphan.name).toMatch(/^kiln-creating-/);
    expect(orphan.labels["kiln.creator"]).toBe(`${hostname()}/${pid}`);
    expect(await kiln.engine.inspectContainer(orphan.id), "the killed create left nothing to sweep").toBeDefined();

    await kiln.sweep();
    // Another Kiln's sweep may be removing it at this moment (then ours is told "in progress").
    for (let i = 0; i < 75 && (await kiln.engine.inspectContainer(orphan.id)); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await kiln.engine.inspectContainer(orphan.id)).toBeUndefined();
  });

  it("sweeps orphaned pool members soon after a new Kiln starts working, not only after 30 s", async () => {
    const image = inject("runtimeImage");
    const orphan = await kiln.engine.createContainer({
      name: `kiln-pool-early-${process.pid}`,
      image,
      env: {},
      cpus: 1,
      memoryMb: 128,
      pids: 64,
      network: "none",
      volumes: [],
      labels: { "kiln.kind": "pool", "kiln.owner": `${hostname()}/2147483646`, ...TEST_LABELS },
    });
    // Other processes' sweepers on this engine may reclaim the orphan too: count this Kiln's own sweeps.
    const engine = new DockerEngine();
    let sweeps = 0;
    const listContainers = engine.listContainers.bind(engine);
    engine.listContainers = (labels) => {
      if (Object.keys(labels).join() === "kiln.kind") sweeps++;
      return listContainers(labels);
    };
    const fresh = new Kiln({ image, engine });
    try {
      await fresh.get("no-such-sandbox").catch(() => {}); // the short script's one call (no list of its own)
      // Removal itself can take seconds (Docker 20.10 on btrfs walks the rootfs): well under the 30 s interval.
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (sweeps === 0 || (await engine.inspectContainer(orphan)))) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(sweeps, "no sweep ran within 15 s").toBeGreaterThan(0);
      expect(await engine.inspectContainer(orphan)).toBeUndefined();
    } finally {
      await engine.removeContainer(orphan);
      await fresh.close();
    }
  });
});

describe("limits the host cannot honour", () => {
  const kiln = testKiln();

  it("refuses memory, CPUs and pids above the host's capacity, naming the field and the capacity", async () => {
    const info = await kiln.engine.info();
    const cases: [Parameters<Kiln["create"]>[0], string, RegExp][] = [
      [{ resources: { memoryMb: 1024 * 1024 } }, "options.resources.memoryMb", /host has \(\d+ MiB\)/],
      [
        { resources: { cpus: info.cpus + 1 } },
        "options.resources.cpus",
        new RegExp(`host has \\(${info.cpus} CPUs\\)`),
      ],
      [{ resources: { pids: 1_000_000 } }, "options.resources.pids", /between 16 and 32768/],
    ];
    for (const [options, field, message] of cases) {
      const error = await kiln.create({ ...options, labels: TEST_LABELS }).catch((e: unknown) => e);
      expect(error, field).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe(field);
      expect((error as Error).message).toMatch(message);
    }
  });

  it("refuses a PATH that hides the system directories clearly, and applies one that keeps them", async () => {
    const error = await kiln.create({ env: { PATH: "/x" }, labels: TEST_LABELS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe("options.env.PATH");
    expect((error as Error).message).toMatch(/must keep \/usr\/bin and \/bin/);
    const sb = await sandbox(kiln, { env: { PATH: "/opt/tools/bin:/usr/local/bin:/usr/bin:/bin" } });
    expect((await sb.exec("echo $PATH")).stdout).toBe("/opt/tools/bin:/usr/local/bin:/usr/bin:/bin\n");
  });
});
