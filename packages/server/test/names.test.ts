// Sandbox names through the server take what core takes (63 characters), and stay unique per
// organisation: two organisations may use the same name, and neither reaches the other's.
import { describe, expect, it } from "vitest";
import { addOrgKey, testServer } from "./helpers.ts";

const t = await testServer();
// Organisation ids as the server makes them (org_ + 12 characters).
const other = await addOrgKey(t.dataDir, "org_names0test1");
const name63 = `n${process.pid}-${"x".repeat(63)}`.slice(0, 63);

describe("sandbox names", () => {
  it("takes names of 63 characters and refuses 64, naming the field", async () => {
    expect(name63).toHaveLength(63);
    const made = await t.create({ name: name63, labels: { role: "names" } });
    expect(made.name).toBe(name63);
    expect(made.labels).toEqual(expect.not.objectContaining({ "kiln.name": expect.anything() }));
    const got = await t.api("GET", `/v1/sandboxes/${name63}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: made.id, name: name63 });
    const listed = await t.api("GET", "/v1/sandboxes?label=role=names");
    expect(listed.body.sandboxes.map((s: { name?: string }) => s.name)).toContain(name63);
    expect((await t.api("POST", `/v1/sandboxes/${name63}/exec`, { body: { command: "echo ok" } })).body.stdout).toBe(
      "ok\n",
    );

    const again = await t.api("POST", "/v1/sandboxes", { body: { name: name63 } });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toBe(`A sandbox named "${name63}" already exists`);

    const tooLong = await t.api("POST", "/v1/sandboxes", { body: { name: `${name63}y` } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.field).toBe("name");
  });

  it("keeps long names that share their first 50 characters apart", async () => {
    const stem = `s${process.pid}-${"y".repeat(60)}`.slice(0, 55);
    const a = await t.create({ name: `${stem}-aaaaaaa` });
    const b = await t.create({ name: `${stem}-bbbbbbb` });
    expect(a.id).not.toBe(b.id);
    expect((await t.api("GET", `/v1/sandboxes/${stem}-aaaaaaa`)).body.id).toBe(a.id);
    expect((await t.api("GET", `/v1/sandboxes/${stem}-bbbbbbb`)).body.id).toBe(b.id);
    expect((await t.api("GET", `/v1/sandboxes/${stem}-ccccccc`)).status).toBe(404);
  });

  it("lets two organisations use the same name, each reaching only its own", async () => {
    const shared = `shared-${process.pid}-${"z".repeat(60)}`.slice(0, 63);
    const short = `dev-${process.pid}`;
    const mineLong = await t.create({ name: shared });
    const mineShort = await t.create({ name: short });
    // The other organisation does not see them by name or id before it has its own.
    expect((await t.api("GET", `/v1/sandboxes/${shared}`, { key: other })).status).toBe(404);
    expect((await t.api("GET", `/v1/sandboxes/${String(mineLong.id)}`, { key: other })).status).toBe(404);
    const theirsLong = await t.create({ name: shared }, other);
    const theirsShort = await t.create({ name: short }, other);
    expect(theirsLong.id).not.toBe(mineLong.id);
    expect(theirsShort.id).not.toBe(mineShort.id);
    expect(theirsLong.name).toBe(shared);
    expect((await t.api("GET", `/v1/sandboxes/${shared}`)).body.id).toBe(mineLong.id);
    expect((await t.api("GET", `/v1/sandboxes/${shared}`, { key: other })).body.id).toBe(theirsLong.id);
    expect((await t.api("GET", `/v1/sandboxes/${short}`, { key: other })).body.id).toBe(theirsShort.id);
    // Deleting theirs leaves mine.
    expect((await t.api("DELETE", `/v1/sandboxes/${shared}`, { key: other })).status).toBe(204);
    expect((await t.api("GET", `/v1/sandboxes/${shared}`, { key: other })).status).toBe(404);
    expect((await t.api("GET", `/v1/sandboxes/${shared}`)).body.id).toBe(mineLong.id);
  });
});

describe("snapshot and volume names", () => {
  // 63 characters: core's whole limit, so `<orgId>.<name>` is shortened in the engine.
  const long = (stem: string) => `${stem}-${process.pid}-${"q".repeat(63)}`.slice(0, 63);

  it("takes 63-character volume names in any organisation: create, mount, list, delete", async () => {
    const vol = long("vol");
    for (const key of [undefined, other]) {
      const made = await t.api("POST", "/v1/volumes", { body: { name: vol }, key });
      expect(made.status).toBe(201);
      expect(made.body.name).toBe(vol);
      expect((await t.api("POST", "/v1/volumes", { body: { name: vol }, key })).status).toBe(409);
      const listed = (await t.api("GET", "/v1/volumes", { key })).body.volumes.map((v: { name: string }) => v.name);
      expect(listed).toContain(vol);
      expect(listed.every((n: string) => !n.includes("."))).toBe(true); // never a core name
    }
    const box = await t.create({ volumes: [{ volume: vol, mountPath: "/data" }] }, other);
    const wrote = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, {
      body: { command: "echo theirs > /data/v && cat /data/v" },
      key: other,
    });
    expect(wrote.body.stdout).toBe("theirs\n");
    // The same name in the default organisation is another volume.
    const mine = await t.create({ volumes: [{ volume: vol, mountPath: "/data" }] });
    const read = await t.api("POST", `/v1/sandboxes/${mine.id}/exec`, { body: { command: "ls /data | wc -l" } });
    expect(read.body.stdout.trim()).toBe("0");
    await t.api("DELETE", `/v1/sandboxes/${box.id}`, { key: other });
    await t.api("DELETE", `/v1/sandboxes/${mine.id}`);
    for (const key of [undefined, other]) {
      expect((await t.api("DELETE", `/v1/volumes/${vol}`, { key })).status).toBe(204);
      expect((await t.api("DELETE", `/v1/volumes/${vol}`, { key })).status).toBe(404);
      const listed = (await t.api("GET", "/v1/volumes", { key })).body.volumes.map((v: { name: string }) => v.name);
      expect(listed).not.toContain(vol);
    }
  });

  it("takes 63-character snapshot names: snapshot, list, create from it, delete", async () => {
    const snap = long("snap");
    const box = await t.create({}, other);
    await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo kept > /workspace/k" }, key: other });
    const made = await t.api("POST", `/v1/sandboxes/${box.id}/snapshots`, { body: { name: snap }, key: other });
    expect(made.status).toBe(201);
    expect(made.body.name).toBe(snap);
    expect(
      (await t.api("POST", `/v1/sandboxes/${box.id}/snapshots`, { body: { name: snap }, key: other })).status,
    ).toBe(409);
    const listed = (await t.api("GET", "/v1/snapshots", { key: other })).body.snapshots;
    expect(listed.map((s: { name: string }) => s.name)).toContain(snap);
    // Not the default organisation's.
    expect((await t.api("GET", "/v1/snapshots")).body.snapshots.map((s: { name: string }) => s.name)).not.toContain(
      snap,
    );
    expect((await t.api("POST", "/v1/sandboxes", { body: { snapshot: snap } })).status).toBe(404);
    const restored = await t.create({ snapshot: snap }, other);
    const read = await t.api("POST", `/v1/sandboxes/${restored.id}/exec`, {
      body: { command: "cat /workspace/k" },
      key: other,
    });
    expect(read.body.stdout).toBe("kept\n");
    await t.api("DELETE", `/v1/sandboxes/${restored.id}`, { key: other });
    expect((await t.api("DELETE", `/v1/snapshots/${snap}`, { key: other })).status).toBe(204);
    expect((await t.api("DELETE", `/v1/snapshots/${snap}`, { key: other })).status).toBe(404);
  });

  it("still reaches volumes made before names were shortened (`<orgId>.<name>` of exactly 63 characters)", async () => {
    // 55 characters: "default." + name is 63, the longest plain form the server made before.
    const old = `old-${process.pid}-${"o".repeat(63)}`.slice(0, 55);
    await t.kiln.volumes.create(`default.${old}`); // as the server stored it then
    try {
      const listed = (await t.api("GET", "/v1/volumes")).body.volumes.map((v: { name: string }) => v.name);
      expect(listed).toContain(old);
      expect((await t.api("POST", "/v1/volumes", { body: { name: old } })).status).toBe(409);
      const box = await t.create({ volumes: [{ volume: old, mountPath: "/data" }] });
      expect(
        (await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo ok > /data/x" } })).status,
      ).toBe(200);
      await t.api("DELETE", `/v1/sandboxes/${box.id}`);
      expect((await t.api("DELETE", `/v1/volumes/${old}`)).status).toBe(204);
      expect((await t.kiln.volumes.list()).map((v) => v.name)).not.toContain(`default.${old}`);
    } finally {
      await t.kiln.volumes.delete(`default.${old}`).catch(() => {});
    }
  });
});
