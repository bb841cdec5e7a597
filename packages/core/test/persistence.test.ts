// Issue: an agent's work survives stops, restarts and new sessions (snapshots, volumes, lifecycle).
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import {
  ConflictError,
  InvalidArgumentError,
  Kiln,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  VolumeNotFoundError,
} from "../src/index.ts";
import { newKiln, sandbox, TEST_ENGINE, TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return check();
}

describe("volumes", () => {
  it("outlive sandboxes, mount read-write or read-only, and refuse deletion while mounted", async () => {
    const name = uniqueName("vol");
    const created = await kiln.volumes.create(name);
    expect(created.name).toBe(name);
    await expect(kiln.volumes.create(name)).rejects.toThrow(ConflictError);
    expect((await kiln.volumes.list()).map((v) => v.name)).toContain(name);

    const writer = await sandbox(kiln, { volumes: [{ volume: name, mountPath: "/data" }] });
    // Docker: the volume's root belongs to the sandbox user. Kubernetes: to root, with the pod's
    // fsGroup (the sandbox user's group) as its group, group-writable (the kubelet's ownership change).
    expect(
      (await writer.exec(`echo kept > /data/note.txt && stat -c ${TEST_ENGINE === "docker" ? "%U" : "%G"} /data`))
        .stdout,
    ).toBe("kiln\n");
    await writer.delete();

    const reader = await sandbox(kiln, { volumes: [{ volume: name, mountPath: "/mnt/in", readOnly: true }] });
    expect(await reader.files.readText("/mnt/in/note.txt")).toBe("kept\n");
    const write = await reader.exec("echo x > /mnt/in/other.txt");
    expect(write.status).toBe("error");
    expect(write.stderr).toMatch(/Read-only file system/);

    await expect(kiln.volumes.delete(name)).rejects.toThrow(ConflictError);
    await reader.delete();
    await kiln.volumes.delete(name);
    expect((await kiln.volumes.list()).map((v) => v.name)).not.toContain(name);
    await expect(kiln.volumes.delete(name)).rejects.toThrow(VolumeNotFoundError);
    await expect(kiln.volumes.create("../bad")).rejects.toThrow(InvalidArgumentError);
  });
});

// Snapshots commit a container: Docker only (the Kubernetes engine has engine-neutral snapshots,
// tested in packages/kubernetes/test/snapshots.test.ts).
describe.skipIf(TEST_ENGINE !== "docker")("snapshots", () => {
  it("capture files, installed packages and Python variables; restore them into a new sandbox", async () => {
    const snap = uniqueName("snap");
    const source = await sandbox(kiln);
    await source.files.write("project/report.md", "# findings\n");
    // A package installed into the sandbox (user site-packages), as `pip install --user` would.
    await source.exec(
      "mkdir -p ~/.local/lib/python3.11/site-packages && echo 'def hello(): return \"hi from mypkg\"' > ~/.local/lib/python3.11/site-packages/mypkg.py",
    );
    await source.runCode(
      "import pandas as pd\nimport socket\ntotal = 42\ndf = pd.DataFrame({'a': [1, 2, 3]})\ndef twice(n):\n    return 2 * n\nconn = socket.socket()",
    );
    const info = await source.snapshot(snap);
    expect(info.name).toBe(snap);
    expect(info.sizeBytes).toBeGreaterThan(0);
    const saved = info.state?.default;
    expect(saved?.saved).toEqual(expect.arrayContaining(["total", "df", "twice"]));
    expect(saved?.failed?.map((f) => f.name)).toContain("conn");
    expect((await kiln.snapshots.list()).map((s) => s.name)).toContain(snap);
    // The source keeps running, untouched.
    expect((await source.runCode("total")).results[0]?.text).toBe("42");

    const restored = await sandbox(kiln, { snapshot: snap });
    expect(await restored.files.readText("project/report.md")).toBe("# findings\n");
    expect((await restored.exec("python3 -c 'import mypkg; print(mypkg.hello())'")).stdout).toBe("hi from mypkg\n");
    const back = await restored.runCode("(total, twice(df.a.sum()), pd.__name__)");
    expect(back.error).toBeUndefined();
    expect(back.results[0]?.text).toBe("(42, 12, 'pandas')");

    await expect(kiln.snapshots.delete(snap)).rejects.toThrow(ConflictError);
    await restored.delete();
    await kiln.snapshots.delete(snap);
    expect((await kiln.snapshots.list()).map((s) => s.name)).not.toContain(snap);
  });

  it("validates names and reports missing snapshots", async () => {
    const sb = await sandbox(kiln);
    await expect(sb.snapshot("no spaces allowed")).rejects.toThrow(InvalidArgumentError);
    await expect(kiln.create({ snapshot: uniqueName("missing"), labels: TEST_LABELS })).rejects.toThrow(
      SnapshotNotFoundError,
    );
    await expect(kiln.snapshots.delete(uniqueName("missing"))).rejects.toThrow(SnapshotNotFoundError);
  });
});

describe("lifecycle timers and named sandboxes", () => {
  // On Kubernetes a cold sandbox's agent never reads /etc/kiln/agent.json (those files are pod
  // annotations there): its idle stop is the sweep's (every 30 s; engine.stopIdle, tested in
  // packages/kubernetes/test/engine.test.ts), too slow for this test's 10 s.
  it.skipIf(TEST_ENGINE !== "docker")(
    "auto-stops after autoStopMs without activity; a long command counts as activity",
    async () => {
      const idle = await sandbox(kiln, { autoStopMs: 1500 });
      const busy = await sandbox(kiln, { autoStopMs: 1500 });
      const long = busy.exec("sleep 3; echo done");
      // Watch through the engine: sandbox.info() is itself activity and would keep it awake.
      const status = async (id: string) => (await kiln.engine.inspectContainer(id))?.status;
      expect(await eventually(async () => (await status(idle.id)) === "exited", 10_000)).toBe(true);
      expect(await status(busy.id)).toBe("running");
      expect((await long).stdout).toBe("done\n");
      await idle.start();
      expect((await idle.exec("echo back")).stdout).toBe("back\n");
    },
  );

  it("auto-deletes after autoDeleteMs stopped, enforced by any Kiln's sweep", async () => {
    const doomed = await sandbox(kiln, { autoDeleteMs: 0 });
    await doomed.stop();
    const other = newKiln();
    try {
      const report = await other.sweep();
      expect(report.autoDeleted).toContain(doomed.id);
    } finally {
      await other.close();
    }
    await expect(kiln.get(doomed.id)).rejects.toThrow(SandboxNotFoundError);
  });

  it("getOrCreate returns the named sandbox, starting it if stopped, or makes it", async () => {
    const name = uniqueName("conv");
    const first = await kiln.getOrCreate(name, { labels: TEST_LABELS });
    await first.files.write("memory.txt", "turn 1");
    const again = await kiln.getOrCreate(name, { labels: TEST_LABELS });
    expect(again.id).toBe(first.id);
    await first.stop();
    const resumed = await kiln.getOrCreate(name, { labels: TEST_LABELS });
    expect(resumed.id).toBe(first.id);
    expect(await resumed.files.readText("memory.txt")).toBe("turn 1");
    await expect(kiln.create({ name, labels: TEST_LABELS })).rejects.toThrow(/already exists/);
    await resumed.delete();
  });
});

// The crashing child builds its Kiln on Docker (fixtures/crash-child.ts) and takes a snapshot.
describe.skipIf(TEST_ENGINE !== "docker")("crash safety", () => {
  it("after kill -9 of the creating process, everything is still listed and usable; pool orphans are reclaimed", async () => {
    const name = uniqueName("crash");
    const volume = uniqueName("crashvol");
    const snap = uniqueName("crashsnap");
    const script = fileURLToPath(new URL("./fixtures/crash-child.ts", import.meta.url));
    const child = spawn(process.execPath, [script, name, volume, snap, inject("runtimeImage")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ready = await new Promise<{ pid: number; sandboxId: string }>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c;
        const line = out.split("\n").find((l) => l.startsWith("READY "));
        if (line) resolve(JSON.parse(line.slice(6)));
      });
      child.on("exit", (code) => reject(new Error(`crash child exited early with ${code}`)));
    });
    const after = new Kiln();
    const owner = `${hostname()}/${ready.pid}`;
    // Listed while the child lives: once it is dead, any Kiln's sweep on this host may reclaim them.
    const orphans = await after.engine.listContainers({ "kiln.kind": "pool", "kiln.owner": owner });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    try {
      const sb = await after.get(name);
      expect(sb.id).toBe(ready.sandboxId);
      expect((await sb.exec("cat /workspace/made-before-crash.txt")).stdout).toBe("still here\n");
      expect((await after.volumes.list()).map((v) => v.name)).toContain(volume);
      expect((await after.snapshots.list()).map((s) => s.name)).toContain(snap);
      expect(orphans.length).toBeGreaterThan(0);
      await after.sweep();
      // Another sweep (this Kiln's first, or another process's) may be removing one right now.
      for (const o of orphans) {
        for (let i = 0; i < 50 && (await after.engine.inspectContainer(o.id)); i++) {
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(await after.engine.inspectContainer(o.id)).toBeUndefined();
      }
      expect(await after.engine.listContainers({ "kiln.kind": "pool", "kiln.owner": owner })).toEqual([]);
      await sb.delete();
      await after.snapshots.delete(snap);
      await after.volumes.delete(volume);
      expect((await after.volumes.list()).map((v) => v.name)).not.toContain(volume);
    } finally {
      // Whatever failed above, nothing the child made outlives the test (the sandbox first: it
      // holds the volume).
      await (await after.get(name).catch(() => undefined))?.delete();
      await after.snapshots.delete(snap).catch(() => undefined);
      await after.volumes.delete(volume).catch(() => undefined);
      await after.close();
    }
  });
});
