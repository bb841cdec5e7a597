// Sandboxes through a real Kiln server: create/get/list/getOrCreate, info, stop/start/delete,
// and errors arriving as the same KilnError classes and codes as in-process.
import {
  ConflictError,
  InvalidArgumentError,
  Kiln,
  KilnError,
  Sandbox,
  SandboxNotFoundError,
  UnauthorizedError,
} from "@kiln/core";
import { describe, expect, it } from "vitest";
import { remoteKiln, sandbox, server, TEST_LABELS, track, uniqueName } from "./helpers.ts";

const kiln = remoteKiln();

describe("remote Kiln: sandboxes", () => {
  it("creates a sandbox that is a Sandbox, with the server's info", async () => {
    const name = uniqueName("remote");
    const sb = await sandbox(kiln, { name, language: "javascript", labels: { role: "t" }, env: { GREETING: "hi" } });
    expect(sb).toBeInstanceOf(Sandbox);
    expect(sb.name).toBe(name);
    expect(sb.language).toBe("javascript");
    const info = await sb.info();
    expect(info).toMatchObject({ id: sb.id, name, state: "running", labels: { ...TEST_LABELS, role: "t" } });
    expect((await sb.exec("echo $GREETING")).stdout).toBe("hi\n");

    const byName = await kiln.get(name);
    expect(byName.id).toBe(sb.id);
    expect((await kiln.get(sb.id)).name).toBe(name);
    const listed = await kiln.list({ labels: { ...TEST_LABELS, role: "t" } });
    expect(listed.map((i) => i.id)).toContain(sb.id);
    expect(await kiln.list({ labels: { role: `absent-${name}` } })).toEqual([]);
  });

  it("getOrCreate finds the named sandbox (starting it when stopped) or makes it", async () => {
    const name = uniqueName("goc");
    const first = track(await kiln.getOrCreate(name, { labels: TEST_LABELS }));
    await first.files.write("keep.txt", "kept");
    await first.stop();
    expect((await first.info()).state).toBe("stopped");
    const again = await kiln.getOrCreate(name, { labels: TEST_LABELS });
    expect(again.id).toBe(first.id);
    expect((await again.info()).state).toBe("running");
    expect(await again.files.readText("keep.txt")).toBe("kept");
    // Concurrent callers agree on one sandbox.
    const raced = uniqueName("race");
    const both = await Promise.all([
      kiln.getOrCreate(raced, { labels: TEST_LABELS }),
      kiln.getOrCreate(raced, { labels: TEST_LABELS }),
    ]);
    track(both[0]);
    expect(both[0].id).toBe(both[1].id);
  });

  it("stops, starts and deletes; delete is idempotent on a handle, and await using deletes", async () => {
    const sb = await sandbox(kiln);
    await sb.stop();
    await sb.stop();
    expect((await sb.info()).state).toBe("stopped");
    await sb.start();
    expect((await sb.exec("echo up")).stdout).toBe("up\n");
    await sb.delete();
    await sb.delete();
    await expect(kiln.get(sb.id)).rejects.toBeInstanceOf(SandboxNotFoundError);
    await expect(sb.info()).rejects.toMatchObject({ code: "SANDBOX_NOT_FOUND" });
    // A second handle deleting an already deleted sandbox learns it is gone.
    let id = "";
    {
      await using scoped = await kiln.create({ labels: TEST_LABELS });
      id = scoped.id;
    }
    await expect(kiln.get(id)).rejects.toBeInstanceOf(SandboxNotFoundError);
  });

  it("answers errors as the same KilnError classes and codes as in-process", async () => {
    const missing = await kiln.get("no-such-sandbox-here").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SandboxNotFoundError);
    expect(KilnError.isInstance(missing)).toBe(true);
    expect((missing as KilnError).code).toBe("SANDBOX_NOT_FOUND");

    const name = uniqueName("dup");
    await sandbox(kiln, { name });
    await expect(kiln.create({ name, labels: TEST_LABELS })).rejects.toBeInstanceOf(ConflictError);

    const bad = await kiln.create({ resources: { memoryMb: 1 }, labels: TEST_LABELS }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    expect((bad as InvalidArgumentError).field).toMatch(/memoryMb/);
    await expect(kiln.create({ network: "everywhere" as never })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    // Checked on this side before any request, with in-process wording.
    await expect(kiln.get("")).rejects.toThrow(/idOrName/);
    await expect(kiln.snapshots.delete("no-such-snapshot-x")).rejects.toMatchObject({ code: "SNAPSHOT_NOT_FOUND" });
    await expect(kiln.volumes.delete("no-such-volume-x")).rejects.toMatchObject({ code: "VOLUME_NOT_FOUND" });
  });

  it("a wrong key fails the first call with UNAUTHORIZED", async () => {
    const wrong = new Kiln({ url: server().url, apiKey: "kiln_wrong" });
    const err = await wrong.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as KilnError).code).toBe("UNAUTHORIZED");
    await expect(wrong.create()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(wrong.images.ensure()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("reads KILN_URL and KILN_API_KEY when no url or engine is given", async () => {
    const saved = { url: process.env.KILN_URL, key: process.env.KILN_API_KEY };
    process.env.KILN_URL = server().url;
    process.env.KILN_API_KEY = server().apiKey;
    try {
      const fromEnv = new Kiln();
      const sb = await sandbox(fromEnv);
      expect((await kiln.get(sb.id)).id).toBe(sb.id);
      process.env.KILN_API_KEY = "kiln_wrong";
      await expect(new Kiln().list()).rejects.toBeInstanceOf(UnauthorizedError);
    } finally {
      for (const [k, v] of [
        ["KILN_URL", saved.url],
        ["KILN_API_KEY", saved.key],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it("images.ensure() checks the server and the key instead of building anything here", async () => {
    const events: string[] = [];
    const tag = await kiln.images.ensure({ onProgress: (e) => events.push(e.message) });
    expect(typeof tag).toBe("string");
    expect(events.join()).toContain(server().url);
  });
});
