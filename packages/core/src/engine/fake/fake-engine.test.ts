// The warm pool, the sweeper and ConversationSandboxes against the in-memory engine: their races,
// driven exactly, in milliseconds. (The Docker integration tests in test/ cover the same code on
// the real engine.)
import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { ConversationSandboxes } from "../../conversations/conversation-sandboxes.ts";
import { ConflictError, SandboxNotRunningError } from "../../errors.ts";
import { Kiln } from "../../kiln.ts";
import type { Sandbox } from "../../sandbox/sandbox.ts";
import { KIND_POOL, KIND_SANDBOX, LABEL, NAMED_PREFIX, POOL_PREFIX } from "../labels.ts";
import { FAKE_RUNTIME_IMAGE, FakeEngine } from "./fake-engine.ts";

function fakeKiln(engine = new FakeEngine(), pool = 0): { engine: FakeEngine; kiln: Kiln } {
  return { engine, kiln: new Kiln({ engine, image: FAKE_RUNTIME_IMAGE, ...(pool ? { pool: { size: pool } } : {}) }) };
}

const poolMembers = (engine: FakeEngine) =>
  [...engine.containers.values()].filter((c) => c.spec.labels[LABEL.kind] === KIND_POOL);
const unclaimed = (engine: FakeEngine) => poolMembers(engine).filter((c) => c.name.startsWith(POOL_PREFIX));

describe("warm pool (FakeEngine)", () => {
  it("fills, hands a member out once, and refills", async () => {
    const { engine, kiln } = fakeKiln(undefined, 2);
    await kiln.pool?.filled();
    expect(unclaimed(engine)).toHaveLength(2);
    const a = await kiln.create({ name: "a" });
    expect(engine.containers.get(a.id)?.name).toBe(`${NAMED_PREFIX}a`);
    await kiln.pool?.filled();
    expect(unclaimed(engine)).toHaveLength(2);
    await kiln.close();
    // Draining removes the unclaimed members; the claimed sandbox keeps running.
    expect(unclaimed(engine)).toHaveLength(0);
    expect(engine.containers.get(a.id)?.status).toBe("running");
  });

  it("a claim racing close(): the sandbox is either handed out and kept, or never made; nothing leaks", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    const renaming = engine.hold("renameContainer");
    const created = kiln.create({ name: "late" });
    await renaming.reached; // the claim is mid-rename
    const closing = kiln.close();
    renaming.release();
    const sandbox = await created;
    await closing;
    expect(engine.containers.get(sandbox.id)?.name).toBe(`${NAMED_PREFIX}late`);
    expect(engine.containers.get(sandbox.id)?.status).toBe("running");
    expect(unclaimed(engine)).toHaveLength(0);
  });

  it("two Kilns (two processes) claiming the same name: one wins, the loser's member goes back to its pool", async () => {
    const engine = new FakeEngine();
    const one = fakeKiln(engine, 1).kiln;
    const two = fakeKiln(engine, 1).kiln;
    await Promise.all([one.pool?.filled(), two.pool?.filled()]);
    const results = await Promise.allSettled([one.create({ name: "shared" }), two.create({ name: "shared" })]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    expect((lost[0] as PromiseRejectedResult).reason.message).toMatch(/use kiln.getOrCreate\("shared"\)/);
    await Promise.all([one.pool?.filled(), two.pool?.filled()]);
    expect(one.pool?.ready).toBe(1);
    expect(two.pool?.ready).toBe(1);
    await Promise.all([one.close(), two.close()]);
    expect(unclaimed(engine)).toHaveLength(0);
    expect([...engine.containers.values()].map((c) => c.name)).toEqual([`${NAMED_PREFIX}shared`]);
  });
});

describe("a claim's quiet window (FakeEngine)", () => {
  const recordOf = (engine: FakeEngine, id: string) => engine.containers.get(id)?.files.get("/etc/kiln/sandbox.json");

  it("the record files and the refill wait for it; stop() writes the files at once", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    const sandbox = await kiln.create({ name: "quiet", env: { A: "1" } });
    expect(recordOf(engine, sandbox.id)).toBeUndefined();
    expect(unclaimed(engine)).toHaveLength(0); // no replacement yet
    await sandbox.stop();
    expect(JSON.parse(String(recordOf(engine, sandbox.id)))).toMatchObject({ name: "quiet" });
    expect(JSON.parse(String(engine.containers.get(sandbox.id)?.files.get("/etc/kiln/env.json")))).toEqual({ A: "1" });
    await kiln.pool?.filled();
    expect(unclaimed(engine)).toHaveLength(1);
    await kiln.close();
  });

  it("another process finds a sandbox claimed a moment ago (it waits for the record while the claimer lives)", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    const sandbox = await kiln.create({ name: "fresh", labels: { team: "a" } });
    const { kiln: other } = fakeKiln(engine);
    expect((await other.get("fresh")).id).toBe(sandbox.id);
    expect((await other.list({ labels: { team: "a" } })).map((i) => i.id)).toEqual([sandbox.id]);
    await Promise.all([kiln.close(), other.close()]);
  });

  it("a sandbox deleted within it gets no files written and the pool reports no error", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    const sandbox = await kiln.create();
    await sandbox.delete();
    await kiln.pool?.filled();
    await new Promise((r) => setTimeout(r, 50));
    expect(kiln.pool?.lastError).toBeUndefined();
    expect(engine.containers.has(sandbox.id)).toBe(false);
    await kiln.close();
  });

  it("a record write the engine fails is tried again: other processes find the sandbox, the sweeper keeps it", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    engine.failNext("putArchive", 2);
    const sandbox = await kiln.create({ name: "kept", labels: { team: "b" } });
    await sandbox.stop(); // needs the files: waits for the write and its retries
    expect(JSON.parse(String(recordOf(engine, sandbox.id)))).toMatchObject({ name: "kept" });
    expect(engine.calls.filter((c) => c.startsWith(`putArchive ${sandbox.id}`))).toHaveLength(3);
    expect(kiln.pool?.lastError).toBeUndefined();
    await kiln.close();
    // As if its claimer had exited: another process still finds it, and a sweep keeps it.
    const member = engine.containers.get(sandbox.id);
    if (member) member.spec.labels[LABEL.owner] = `${hostname()}/2147483646`;
    const { kiln: other } = fakeKiln(engine);
    expect((await other.get("kept")).id).toBe(sandbox.id);
    expect((await other.sweep()).orphansRemoved).not.toContain(sandbox.id);
    expect(engine.containers.has(sandbox.id)).toBe(true);
    await other.close();
  });

  it("a record write that keeps failing is reported by the pool once its tries are spent", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    engine.failNext("putArchive", 4);
    const sandbox = await kiln.create();
    await sandbox.stop().catch(() => {});
    await kiln.pool?.filled();
    expect(String(kiln.pool?.lastError)).toMatch(/putArchive/);
    expect(engine.calls.filter((c) => c.startsWith(`putArchive ${sandbox.id}`))).toHaveLength(4);
    await kiln.close();
  });

  it("a claim that finds the pool empty ends it: the refill starts at once", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    await kiln.create(); // the only member: its claim opens the window
    const poolCreates = () => [...engine.containers.values()].filter((c) => c.spec.labels[LABEL.kind] === KIND_POOL);
    expect(poolCreates()).toHaveLength(1);
    await kiln.create(); // none ready: created cold, and the refill is wanted now
    expect(poolCreates()).toHaveLength(2); // the replacement is being made, well inside the window
    await kiln.pool?.filled();
    expect(unclaimed(engine)).toHaveLength(1);
    await kiln.close();
  });
});

describe("sweeper (FakeEngine)", () => {
  it("removes the pool members of a dead owner, unclaimed or claimed without a record, and nothing else", async () => {
    const { engine, kiln } = fakeKiln(undefined, 1);
    await kiln.pool?.filled();
    const live = await kiln.create({ name: "mine" }); // a claimed member of a live owner
    await kiln.pool?.filled(); // its replacement (after the claim's quiet window)
    const dead = `${hostname()}/2147483646`;
    const spec = (name: string) => ({
      name,
      image: FAKE_RUNTIME_IMAGE,
      labels: { [LABEL.kind]: KIND_POOL, [LABEL.shape]: "x", [LABEL.owner]: dead },
      env: {},
      cpus: 1,
      memoryMb: 64,
      pids: 16,
      network: "none" as const,
      volumes: [],
    });
    const orphan = await engine.createContainer(spec(`${POOL_PREFIX}orphan`));
    await engine.startContainer(orphan);
    // Claimed (renamed) by the dead owner, which died before the record landed: nobody can reach it.
    const halfClaimed = await engine.createContainer(spec("kiln-half"));
    await engine.startContainer(halfClaimed);
    const report = await kiln.sweep();
    expect(report.orphansRemoved.sort()).toEqual([orphan, halfClaimed].sort());
    expect(engine.containers.has(live.id)).toBe(true);
    expect(unclaimed(engine)).toHaveLength(1); // this Kiln's own ready member
    await kiln.close();
  });

  it("deletes a stopped sandbox once its autoDeleteMs has passed", async () => {
    const { engine, kiln } = fakeKiln();
    const keep = await kiln.create({ autoDeleteMs: 60_000 });
    const expire = await kiln.create({ autoDeleteMs: 0 });
    await Promise.all([keep.stop(), expire.stop()]);
    const report = await kiln.sweep();
    expect(report.autoDeleted).toEqual([expire.id]);
    expect(engine.containers.has(keep.id)).toBe(true);
    await kiln.close();
  });

  it("leaves a sandbox being created alone (created, not yet started), however short its autoDeleteMs", async () => {
    const { engine, kiln } = fakeKiln();
    const starting = engine.hold("startContainer");
    const created = kiln.create({ autoDeleteMs: 0 });
    await starting.reached;
    // Another Kiln's sweep (any process's) while the container exists but has not started.
    const { kiln: other } = fakeKiln(engine);
    const report = await other.sweep();
    expect(report.autoDeleted).toEqual([]);
    starting.release();
    const sandbox = await created;
    expect(engine.containers.get(sandbox.id)?.status).toBe("running");
    // A named one whose creator died before starting it is stopped like any other: its timer runs.
    const abandoned = await engine.createContainer({
      name: `${NAMED_PREFIX}abandoned`,
      image: FAKE_RUNTIME_IMAGE,
      labels: {
        [LABEL.kind]: KIND_SANDBOX,
        [LABEL.creator]: `${hostname()}/2147483646`,
        [LABEL.autoDeleteMs]: "0",
        [LABEL.createdAt]: new Date().toISOString(),
      },
      env: {},
      cpus: 1,
      memoryMb: 64,
      pids: 16,
      network: "none",
      volumes: [],
    });
    expect((await other.sweep()).autoDeleted).toEqual([abandoned]);
    await Promise.all([kiln.close(), other.close()]);
  });
});

describe("ConversationSandboxes (FakeEngine)", () => {
  it("opens one sandbox for parallel first calls of a conversation", async () => {
    const { engine, kiln } = fakeKiln();
    const sandboxes = new ConversationSandboxes({ kiln, namePrefix: "t-" });
    const ids = await Promise.all(Array.from({ length: 5 }, () => sandboxes.use("c1", async (s) => s.id)));
    expect(new Set(ids).size).toBe(1);
    expect(engine.calls.filter((c) => c.startsWith("createContainer"))).toHaveLength(1);
    await sandboxes.close();
    expect(engine.containers.get(ids[0] as string)?.status).toBe("exited");
  });

  it("two instances (two processes) opening one conversation at once share its sandbox", async () => {
    const engine = new FakeEngine();
    const a = new ConversationSandboxes({ kiln: fakeKiln(engine).kiln, namePrefix: "t-" });
    const b = new ConversationSandboxes({ kiln: fakeKiln(engine).kiln, namePrefix: "t-" });
    const [ia, ib] = await Promise.all([a.use("chat", async (s) => s.id), b.use("chat", async (s) => s.id)]);
    expect(ia).toBe(ib);
    expect(engine.containers.size).toBe(1);
  });

  it("reopens a sandbox deleted or stopped behind its back, and says so once", async () => {
    const { engine, kiln } = fakeKiln();
    const sandboxes = new ConversationSandboxes({ kiln, namePrefix: "t-" });
    // A call that needs the sandbox running (as exec would): a stopped or deleted one fails it.
    const call = async (s: Sandbox) => {
      if ((await s.info()).state !== "running") throw new SandboxNotRunningError(s.id, "stopped");
    };
    const first = await sandboxes.use("c", async (s) => s.id);
    engine.exit(first); // stopped behind its back (the agent's auto-stop, a crash)
    const [again, info] = await sandboxes.use("c", async (s, i) => {
      await call(s);
      return [s.id, i] as const;
    });
    expect(again).toBe(first);
    expect(info).toEqual({ restarted: "started" });
    expect(await sandboxes.use("c", async (_s, i) => i)).toEqual({});
    await engine.removeContainer(first); // deleted behind its back
    const [made, info2] = await sandboxes.use("c", async (s, i) => {
      await call(s);
      return [s.id, i] as const;
    });
    expect(made).not.toBe(first);
    expect(info2).toEqual({ restarted: "recreated" });
    await sandboxes.close();
  });

  it("never releases a sandbox for idleness while a call runs in it", async () => {
    const { engine, kiln } = fakeKiln();
    const sandboxes = new ConversationSandboxes({ kiln, namePrefix: "t-", idleTimeoutMs: 20 });
    let id = "";
    await sandboxes.use("c", async (s) => {
      id = s.id;
      await new Promise((r) => setTimeout(r, 80)); // four idle periods, busy
      expect(engine.containers.get(id)?.status).toBe("running");
    });
    await new Promise((r) => setTimeout(r, 80));
    expect(engine.containers.get(id)?.status).toBe("exited");
    await sandboxes.close();
  });
});
