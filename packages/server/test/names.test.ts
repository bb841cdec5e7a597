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

  it("says how long a snapshot or volume name may be in an organisation", async () => {
    const long = `v${"w".repeat(50)}`;
    const answer = await t.api("POST", "/v1/volumes", { body: { name: long }, key: other });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: "INVALID_ARGUMENT", field: "name" });
    expect(answer.body.error.message).toContain("at most 47 characters");
  });
});
