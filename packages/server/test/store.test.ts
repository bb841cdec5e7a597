// One storage suite, run against SQLite (node:sqlite) and a real PostgreSQL server.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrap, KeyHasher, loadSecret } from "../src/pipeline/keys.ts";
import { openStore, type SqlStore } from "../src/store/sql-store.ts";
import type { KeyRow } from "../src/store/store.ts";
import { testServer } from "./helpers.ts";
import { startPostgres, type TestPostgres } from "./postgres.ts";

let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);
afterAll(() => postgres?.stop());

const backends = [
  { name: "sqlite", url: () => undefined },
  { name: "postgres", url: () => postgres.url },
] as const;

describe.each(backends)("store on $name", ({ name, url }) => {
  let dataDir: string;
  let store: SqlStore;
  const open = () => openStore({ dataDir, ...(url() ? { databaseUrl: url() as string } : {}) });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), `kiln-store-${name}-`));
    store = await open();
  });
  afterAll(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const key = (over: Partial<KeyRow> = {}): KeyRow => ({
    id: `key_${Math.random().toString(36).slice(2)}`,
    orgId: "o1",
    name: "k",
    prefix: "kiln_abc",
    hash: Math.random().toString(16).slice(2).padEnd(64, "0"),
    scopes: ["sandboxes:read"],
    createdAt: new Date().toISOString(),
    ...over,
  });

  it("migrates idempotently (a second open finds the schema)", async () => {
    const again = await open();
    await again.close();
    expect(store.kind).toBe(name);
  });

  it("keeps organisations", async () => {
    await store.createOrg({
      id: "o1",
      name: "one",
      quotas: { maxSandboxes: 5 },
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    expect(await store.getOrg("o1")).toEqual({
      id: "o1",
      name: "one",
      quotas: { maxSandboxes: 5 },
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    expect(await store.getOrg("nope")).toBeUndefined();
    await expect(store.createOrg({ id: "o1b", name: "one", quotas: {}, createdAt: "x" })).rejects.toThrow();
    expect((await store.listOrgs()).map((o) => o.id)).toContain("o1");
  });

  it("keeps keys: find by hash, list per org, revoke once, touch", async () => {
    const k = key({ sandboxId: "abc123", expiresAt: "2099-01-01T00:00:00.000Z", scopes: ["*"] });
    await store.createKey(k);
    expect(await store.findKeyByHash(k.hash)).toEqual(k);
    expect(await store.getKey(k.id)).toEqual(k);
    expect(await store.findKeyByHash("f".repeat(64))).toBeUndefined();
    await expect(store.createKey({ ...k, id: "key_dup" })).rejects.toThrow();
    await expect(store.createKey(key({ orgId: "no-such-org" }))).rejects.toThrow();
    expect((await store.listKeys("o1")).map((r) => r.id)).toContain(k.id);
    expect(await store.listKeys("other")).toEqual([]);
    expect(await store.revokeKey(k.id, "2026-02-01T00:00:00.000Z")).toBe(true);
    expect(await store.revokeKey(k.id, "2026-02-02T00:00:00.000Z")).toBe(false);
    await store.touchKey(k.id, "2026-03-01T00:00:00.000Z");
    expect(await store.getKey(k.id)).toMatchObject({
      revokedAt: "2026-02-01T00:00:00.000Z",
      lastUsedAt: "2026-03-01T00:00:00.000Z",
    });
    expect(await store.countKeys()).toBeGreaterThanOrEqual(1);
  });

  it("rolls a failed transaction back", async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.createOrg({ id: "o-rollback", name: "rollback", quotas: {}, createdAt: "x" });
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await store.getOrg("o-rollback")).toBeUndefined();
  });

  it("bootstraps once: the default org and an admin key in admin.key (0600); KILN_ADMIN_KEY is added when new", async () => {
    const dir = await mkdtemp(join(tmpdir(), `kiln-boot-${name}-`));
    let databaseUrl = url();
    if (databaseUrl !== undefined) {
      // A first start needs an empty database: a new one on the same server.
      const db = `boot_${process.pid}`;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${db}`);
      await admin.end();
      databaseUrl = databaseUrl.replace(/\/postgres$/, `/${db}`);
    }
    const fresh = await openStore({ dataDir: dir, ...(databaseUrl ? { databaseUrl } : {}) });
    try {
      const hasher = new KeyHasher(await loadSecret(dir));
      expect((await stat(join(dir, "server.secret"))).mode & 0o777).toBe(0o600);
      {
        const first = await bootstrap(fresh, hasher, { dataDir: dir });
        expect(first.createdAdminKey).toMatch(/^kiln_[A-Za-z0-9_-]{43}$/);
        expect((await readFile(join(dir, "admin.key"), "utf8")).trim()).toBe(first.createdAdminKey);
        expect((await stat(join(dir, "admin.key"))).mode & 0o777).toBe(0o600);
        const row = await fresh.findKeyByHash(hasher.hash(first.createdAdminKey as string));
        expect(row).toMatchObject({ orgId: "default", scopes: ["*"] });
        expect(JSON.stringify(await fresh.listKeys())).not.toContain(first.createdAdminKey);
        expect(await bootstrap(fresh, hasher, { dataDir: dir })).toEqual({});
      }
      const chosen = "my-admin-key-of-enough-length";
      expect(await bootstrap(fresh, hasher, { dataDir: dir, adminKey: chosen })).toEqual({});
      expect((await fresh.findKeyByHash(hasher.hash(chosen)))?.scopes).toEqual(["*"]);
      const count = await fresh.countKeys();
      await bootstrap(fresh, hasher, { dataDir: dir, adminKey: chosen });
      expect(await fresh.countKeys()).toBe(count);
      await expect(bootstrap(fresh, hasher, { dataDir: dir, adminKey: "short" })).rejects.toThrow(/16/);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the server on PostgreSQL", () => {
  it("authenticates against keys in PostgreSQL and keeps them across a restart", async () => {
    const adminKey = `kiln_pg_admin_${process.pid}_0123456789`;
    const t = await testServer({ databaseUrl: postgres.url, adminKey });
    expect((await t.api("GET", "/v1/sandboxes")).status).toBe(200);
    expect((await t.api("GET", "/v1/sandboxes", { key: "kiln_wrong_key_0123456789" })).status).toBe(401);
    await t.restart();
    expect((await t.api("GET", "/v1/snapshots")).status).toBe(200);
    await t.server.close();
  });
});
