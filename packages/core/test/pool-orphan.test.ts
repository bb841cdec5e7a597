// An unclaimed pool member stops itself when its owner process is gone for a while (issue 9):
// a crash never leaves CPU and memory in use until some Kiln sweeps.
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { POOL_ORPHAN_STOP_MS } from "../src/defaults.ts";
import { testKiln } from "./helpers.ts";

const kiln = testKiln();

describe("orphaned pool members", () => {
  // The owner's connection is cut while its process lives on: killed, its members would race
  // every other Kiln process's sweeper on this engine (which reclaims them too, by design).
  it("stop by themselves once their owner's connection has been gone a while", async () => {
    const script = fileURLToPath(new URL("./fixtures/pool-owner.ts", import.meta.url));
    const child = spawn(process.execPath, [script, inject("runtimeImage")], { stdio: ["ignore", "pipe", "inherit"] });
    const members = await new Promise<string[]>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c;
        const line = out.split("\n").find((l) => l.startsWith("READY "));
        if (line) resolve(JSON.parse(line.slice(6)));
      });
      child.on("exit", (code) => reject(new Error(`pool owner exited early with ${code}`)));
    });
    expect(members.length).toBe(1);
    const running = async () => (await kiln.engine.inspectContainer(members[0] as string))?.status;
    try {
      expect(await running()).toBe("running");
      // What the owner's death does to the member: its connection (the docker exec bridge) ends.
      // Timed from before the exec: the agent's clock starts at the kill, before the exec returns.
      const killed = Date.now();
      execFileSync("docker", ["exec", members[0] as string, "pkill", "-x", "socat"]);
      // Still up well before the grace period ends: a brief disconnect is not a death.
      await new Promise((r) => setTimeout(r, POOL_ORPHAN_STOP_MS / 2));
      expect(await running()).toBe("running");
      let status = await running();
      while (status === "running" && Date.now() - killed < POOL_ORPHAN_STOP_MS + 20_000) {
        await new Promise((r) => setTimeout(r, 500));
        status = await running();
      }
      expect(status).not.toBe("running");
      expect(Date.now() - killed).toBeGreaterThanOrEqual(POOL_ORPHAN_STOP_MS);
    } finally {
      child.kill("SIGKILL");
      for (const id of members) await kiln.engine.removeContainer(id).catch(() => {});
    }
  }, 120_000);
});
