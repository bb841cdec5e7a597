// A script exits on its own (issue 21): idle agent connections and pool timers never keep
// Node's event loop alive; a call in flight does.
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { TEST_LABELS, testKiln } from "./helpers.ts";

const kiln = testKiln();
const SCRIPT = fileURLToPath(new URL("./fixtures/script-exits.ts", import.meta.url));
const left: string[] = [];
const owners: number[] = [];
afterAll(async () => {
  for (const id of left) await (await kiln.get(id).catch(() => undefined))?.delete().catch(() => {});
  // The dead scripts' pool members, and only those (a sweep would race pool.test.ts's orphans).
  for (const pid of owners) {
    for (const c of await kiln.engine.listContainers({ "kiln.kind": "pool", "kiln.owner": `${hostname()}/${pid}` })) {
      await kiln.engine.removeContainer(c.id).catch(() => {});
    }
  }
});

/** Runs the script; resolves with its output once it exits, or its state after `withinMs`. */
function run(
  mode: string,
  withinMs: number,
): Promise<{ exited: boolean; code: number | null; stdout: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [SCRIPT, inject("runtimeImage"), TEST_LABELS["test-run"], mode], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (child.pid) owners.push(child.pid);
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ exited: false, code: null, stdout, ms: Date.now() - started });
    }, withinMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ exited: true, code, stdout, ms: Date.now() - started });
    });
  });
}

describe("a script exits on its own", () => {
  for (const mode of ["plain", "pool", "delete"]) {
    it(`without close(): ${mode}`, async () => {
      const result = await run(mode, 45_000);
      const line = result.stdout
        .trim()
        .split("\n")
        .find((l) => l.startsWith("{"));
      if (line) left.push((JSON.parse(line) as { id: string }).id);
      expect(result.exited, `still running after ${result.ms} ms; output: ${result.stdout}`).toBe(true);
      expect(result.code).toBe(0);
      expect(JSON.parse(line ?? "{}").out).toBe("hi\n");
    }, 60_000);
  }

  it("a sandbox left running by the script still works from another process", async () => {
    const id = left[0];
    expect(id).toBeDefined();
    const sb = await kiln.get(id as string);
    expect((await sb.exec("echo still")).stdout).toBe("still\n");
  });
});
