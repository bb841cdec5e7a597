// Snapshots and volumes through a real Kiln server.
import { SnapshotNotFoundError, VolumeNotFoundError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { remoteKiln, sandbox, uniqueName } from "./helpers.ts";

const kiln = remoteKiln();

describe("remote snapshots", () => {
  it("snapshots a sandbox, lists it, starts a sandbox from it and deletes it", async () => {
    const sb = await sandbox(kiln);
    await sb.files.write("state.txt", "saved");
    await sb.runCode("answer = 42");
    const name = uniqueName("snap");
    const snap = await sb.snapshot(name);
    expect(snap).toMatchObject({ name, sourceSandboxId: sb.id });
    try {
      expect((await kiln.snapshots.list()).map((s) => s.name)).toContain(name);
      const restored = await sandbox(kiln, { snapshot: name });
      expect(await restored.files.readText("state.txt")).toBe("saved");
      expect((await restored.runCode("answer")).results[0]?.text).toBe("42");
      await restored.delete();
    } finally {
      await kiln.snapshots.delete(name);
    }
    expect((await kiln.snapshots.list()).map((s) => s.name)).not.toContain(name);
    await expect(kiln.snapshots.delete(name)).rejects.toBeInstanceOf(SnapshotNotFoundError);
    await expect(kiln.create({ snapshot: name })).rejects.toMatchObject({ code: "SNAPSHOT_NOT_FOUND" });
  });
});

describe("remote volumes", () => {
  it("creates, mounts, lists and deletes a volume", async () => {
    const name = uniqueName("vol");
    const volume = await kiln.volumes.create(name);
    expect(volume.name).toBe(name);
    try {
      expect((await kiln.volumes.list()).map((v) => v.name)).toContain(name);
      const writer = await sandbox(kiln, { volumes: [{ volume: name, mountPath: "/data" }] });
      await writer.files.write("/data/shared.txt", "across sandboxes");
      await writer.delete();
      const reader = await sandbox(kiln, { volumes: [{ volume: name, mountPath: "/data", readOnly: true }] });
      expect(await reader.files.readText("/data/shared.txt")).toBe("across sandboxes");
      await reader.delete();
      await expect(kiln.volumes.create(name)).rejects.toMatchObject({ code: "CONFLICT" });
    } finally {
      await kiln.volumes.delete(name);
    }
    await expect(kiln.volumes.delete(name)).rejects.toBeInstanceOf(VolumeNotFoundError);
  });
});
