import { describe, expect, it } from "vitest";
import {
  ConflictError,
  EngineUnavailableError,
  InvalidArgumentError,
  Kiln,
  NotSupportedError,
  SandboxNotFoundError,
  SandboxNotRunningError,
} from "../src/index.ts";
import { newKiln, sandbox, TEST_ENGINE, TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();

describe("sandbox lifecycle", () => {
  it("creates a ready sandbox with name, labels and info", async () => {
    const name = uniqueName("life");
    const sb = await sandbox(kiln, { name, labels: { team: "data" }, language: "python" });
    expect(sb.name).toBe(name);
    const info = await sb.info();
    expect(info).toMatchObject({ id: sb.id, name, state: "running", labels: { ...TEST_LABELS, team: "data" } });
    expect(Date.parse(info.createdAt)).toBeGreaterThan(Date.now() - 120_000);
    expect((await sb.exec("echo ready")).stdout).toBe("ready\n");
  });

  it("gets by id, id prefix and name; lists by labels; a new Kiln sees the same", async () => {
    const name = uniqueName("find");
    const marker = uniqueName("marker");
    const sb = await sandbox(kiln, { name, labels: { marker } });
    expect((await kiln.get(sb.id)).id).toBe(sb.id);
    expect((await kiln.get(sb.id.slice(0, 12))).id).toBe(sb.id);
    expect((await kiln.get(name)).id).toBe(sb.id);
    const other = newKiln();
    try {
      const found = await other.list({ labels: { marker } });
      expect(found.map((i) => i.id)).toEqual([sb.id]);
      expect(found[0]).toMatchObject({ name, state: "running", labels: { marker } });
      const again = await other.get(name);
      expect((await again.exec("echo via another client")).stdout).toBe("via another client\n");
    } finally {
      await other.close();
    }
  });

  it("refuses a taken name clearly", async () => {
    const name = uniqueName("taken");
    await sandbox(kiln, { name });
    await expect(kiln.create({ name, labels: TEST_LABELS })).rejects.toThrow(ConflictError);
    await expect(kiln.create({ name, labels: TEST_LABELS })).rejects.toThrow(
      /already exists: use kiln.getOrCreate\("[^"]+"\) to reuse it, or delete it first/,
    );
  });

  // On Kubernetes, start() makes a new pod with the stopped one's identity and its /workspace.
  it("stops keeping files, starts again, and stop/start are idempotent", async () => {
    const sb = await sandbox(kiln);
    await sb.files.write("keep.txt", "still here");
    await sb.stop();
    await sb.stop();
    expect((await sb.info()).state).toBe("stopped");
    await expect(sb.exec("true")).rejects.toThrow(SandboxNotRunningError);
    await sb.start();
    await sb.start();
    expect((await sb.info()).state).toBe("running");
    expect(await sb.files.readText("keep.txt")).toBe("still here");
  });

  it("deletes: idempotent on the handle, not-found afterwards, and disposable", async () => {
    const sb = await sandbox(kiln);
    await sb.delete();
    await sb.delete();
    await expect(kiln.get(sb.id)).rejects.toThrow(SandboxNotFoundError);
    await expect(sb.info()).rejects.toThrow(SandboxNotFoundError);
    let id = "";
    {
      await using disposable = await sandbox(kiln);
      id = disposable.id;
    }
    await expect(kiln.get(id)).rejects.toThrow(SandboxNotFoundError);
  });

  it.skipIf(TEST_ENGINE !== "docker")(
    "deletes through the agent's exit: the container stops by itself, unkilled, and its name is free at once",
    async () => {
      const docker = (kiln.engine as unknown as { docker: import("dockerode") }).docker;
      const name = uniqueName("exit");
      const sb = await sandbox(kiln, { name });
      expect((await sb.exec("echo hi")).stdout).toBe("hi\n");
      const events = (await docker.getEvents({
        filters: { container: [sb.id], type: ["container"] },
      })) as NodeJS.ReadableStream & { destroy(): void };
      const actions: { Action: string; Actor: { Attributes: Record<string, string> } }[] = [];
      let destroyed!: () => void;
      const destroyEvent = new Promise<void>((resolve) => {
        destroyed = resolve;
      });
      events.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
          actions.push(JSON.parse(line));
          if (actions.at(-1)?.Action === "destroy") destroyed();
        }
      });
      await sb.delete();
      await expect(kiln.get(sb.id)).rejects.toThrow(SandboxNotFoundError);
      // The events arrive asynchronously (late on a loaded engine): wait for the removal's.
      await destroyEvent;
      events.destroy();
      expect(actions.map((a) => a.Action)).not.toContain("kill");
      expect(actions.find((a) => a.Action === "die")?.Actor.Attributes.exitCode).toBe("0");
      expect(actions.map((a) => a.Action)).toContain("destroy");
      // The name is free as soon as delete() resolved.
      const again = await sandbox(kiln, { name });
      expect((await again.exec("echo again")).stdout).toBe("again\n");
    },
  );

  it.skipIf(TEST_ENGINE !== "docker")(
    "deletes a sandbox whose agent cannot answer (frozen): the engine kills it",
    async () => {
      const docker = (kiln.engine as unknown as { docker: import("dockerode") }).docker;
      const sb = await sandbox(kiln);
      expect((await sb.exec("echo hi")).stdout).toBe("hi\n");
      await docker.getContainer(sb.id).pause();
      const started = Date.now();
      await sb.delete();
      expect(Date.now() - started).toBeLessThan(30_000);
      await expect(kiln.get(sb.id)).rejects.toThrow(SandboxNotFoundError);
    },
  );

  it("applies resource limits", async () => {
    const sb = await sandbox(kiln, { resources: { cpus: 0.5, memoryMb: 300, pids: 64 } });
    const limits = await sb.exec(
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max",
    );
    expect(limits.stdout).toMatch(String(300 * 1024 * 1024));
    expect(limits.stdout).toMatch(/\b50000\b/);
    // A Pod has no per-pod pids limit (the kubelet's --pod-max-pids is node-wide) nor ulimits.
    if (TEST_ENGINE !== "docker") return;
    expect(limits.stdout).toMatch(/\b64\b/);
    expect((await sb.exec("ulimit -n")).stdout.trim()).toBe("4096");
  });

  it("rejects bad options naming the field, leaving nothing behind", async () => {
    const marker = { marker: uniqueName("bad") };
    const bad = (options: Parameters<Kiln["create"]>[0]) =>
      kiln.create({ ...options, labels: { ...TEST_LABELS, ...marker, ...options?.labels } });
    await expect(bad({ resources: { memoryMb: -1 } })).rejects.toThrow(/options.resources.memoryMb/);
    await expect(bad({ resources: { cpus: Number.NaN } })).rejects.toThrow(/options.resources.cpus/);
    await expect(bad({ name: "../evil" })).rejects.toThrow(InvalidArgumentError);
    await expect(bad({ language: "cobol" as never })).rejects.toThrow(/options.language/);
    await expect(bad({ labels: { ok: 3 as never } })).rejects.toThrow(/options.labels.ok/);
    await expect(bad({ network: { allow: ["not a host"] } })).rejects.toThrow(/options.network.allow\[0\]/);
    await expect(bad({ network: "everything" as never })).rejects.toThrow(/options.network/);
    await expect(bad({ volumes: [{ volume: "v", mountPath: "relative" }] })).rejects.toThrow(
      /options.volumes\[0\].mountPath/,
    );
    await expect(bad({ volumes: [{ volume: "never-created", mountPath: "/data" }] })).rejects.toThrow(
      /No volume named "never-created"/,
    );
    if (!(await kiln.engine.info()).supportsDiskQuota) {
      await expect(bad({ resources: { diskMb: 512 } })).rejects.toThrow(NotSupportedError);
    }
    await expect(kiln.get(42 as never)).rejects.toThrow(InvalidArgumentError);
    expect(await kiln.list({ labels: marker })).toEqual([]);
  });

  it("removes the container when create is aborted", async () => {
    const marker = uniqueName("abort");
    const controller = new AbortController();
    const creating = kiln.create({ labels: { ...TEST_LABELS, marker }, signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(creating).rejects.toThrow(/aborted/);
    expect(await kiln.list({ labels: { marker } })).toEqual([]);
  });

  it("says how to get an engine when none answers", async () => {
    const nowhere = new Kiln({ docker: { socketPath: "/tmp/no-such-docker.sock" }, image: "any" });
    const error = await nowhere.create().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as Error).message).toMatch(/No Docker engine at \/tmp\/no-such-docker.sock.*start Docker/);
    await nowhere.close();
  });
});
