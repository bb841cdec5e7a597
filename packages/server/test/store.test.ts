// One storage suite, run against SQLite (node:sqlite) and a real PostgreSQL server.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog } from "../src/audit/audit-log.ts";
import { verifyChain } from "../src/audit/chain.ts";
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
  /** A statement straight to the database, past the store (someone with the database's credentials). */
  const raw = async (sql: string) => {
    if (url() === undefined) {
      const db = new DatabaseSync(join(dataDir, "kiln.db"));
      db.exec(sql);
      db.close();
      return;
    }
    const client = new pg.Client({ connectionString: url() as string });
    await client.connect();
    await client.query(sql);
    await client.end();
  };

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

  it("remembers the users' names of shortened snapshot and volume names, per organisation and kind", async () => {
    const core = `o1.${"a".repeat(47)}-0123456789ab`;
    await store.rememberName({ orgId: "o1", kind: "volume", coreName: core, name: "a".repeat(63) });
    await store.rememberName({ orgId: "o1", kind: "volume", coreName: core, name: "a".repeat(63) }); // idempotent
    expect(await store.namesOf("o1", "volume")).toEqual(new Map([[core, "a".repeat(63)]]));
    expect((await store.namesOf("o1", "snapshot")).size).toBe(0);
    expect((await store.namesOf("other", "volume")).size).toBe(0);
    await store.forgetName("o1", "volume", core);
    expect((await store.namesOf("o1", "volume")).size).toBe(0);
  });

  it("answers a key found by its hash from memory briefly, and a revoke ends that at once", async () => {
    const k = key();
    await store.createKey(k);
    expect((await store.findKeyByHash(k.hash))?.revokedAt).toBeUndefined(); // now cached
    expect(await store.revokeKey(k.id, "2026-02-01T00:00:00.000Z")).toBe(true);
    expect((await store.findKeyByHash(k.hash))?.revokedAt).toBe("2026-02-01T00:00:00.000Z");
    // A lookup running beside the revoke does not cache the row as it was before it.
    const other = key();
    await store.createKey(other);
    const [, beside] = await Promise.all([
      store.revokeKey(other.id, "2026-02-02T00:00:00.000Z"),
      store.findKeyByHash(other.hash),
    ]);
    expect(beside).toBeDefined();
    expect((await store.findKeyByHash(other.hash))?.revokedAt).toBe("2026-02-02T00:00:00.000Z");
    // Inside a transaction too (the cache is shared with the store's transactions).
    const third = key();
    await store.createKey(third);
    await store.findKeyByHash(third.hash);
    await store.transaction((tx) => tx.revokeKey(third.id, "2026-02-03T00:00:00.000Z"));
    expect((await store.findKeyByHash(third.hash))?.revokedAt).toBe("2026-02-03T00:00:00.000Z");
    // Unknown keys are not remembered: a key created after a miss is found.
    const late = key();
    expect(await store.findKeyByHash(late.hash)).toBeUndefined();
    await store.createKey(late);
    expect((await store.findKeyByHash(late.hash))?.id).toBe(late.id);
  });

  it("chains audit events per organisation; an edited or deleted row breaks the chain", async () => {
    const event = (orgId: string, action: string, detail?: Record<string, unknown>) => ({
      at: new Date().toISOString(),
      orgId,
      keyId: "key_x",
      action,
      target: "t",
      ...(detail ? { detail } : {}),
      outcome: "ok",
      status: 200,
      durationMs: 3,
    });
    const stored = await store.appendAudit([
      event("chain-a", "sandbox.exec", { command: "echo 1", nested: { b: 1, a: [1, "x"] } }),
      event("chain-b", "sandbox.create"),
      event("chain-a", "sandbox.exec", { command: "echo 2" }),
    ]);
    await store.appendAudit([event("chain-a", "sandbox.delete")]);
    expect(stored[0]?.prevHash).toBe("0".repeat(64));
    expect(stored[1]?.prevHash).toBe("0".repeat(64));
    expect(stored[2]?.prevHash).toBe(stored[0]?.hash);
    const a = await store.listAudit("chain-a", { limit: 100 });
    expect(a.map((e) => e.action)).toEqual(["sandbox.exec", "sandbox.exec", "sandbox.delete"]);
    expect(a[0]).toEqual(stored[0]);
    expect(verifyChain(a)).toEqual({ ok: true, checked: 3 });
    expect((await store.listAudit("chain-a", { limit: 2 })).map((e) => e.id)).toEqual([a[1]?.id, a[2]?.id]);
    expect((await store.listAudit("chain-a", { after: a[0]?.id, limit: 1 })).map((e) => e.id)).toEqual([a[1]?.id]);
    // Tamper with the database directly.
    const victim = a[1]?.id as number;
    await raw(`UPDATE audit_events SET detail = '{"command":"echo innocent"}' WHERE seq = ${victim}`);
    expect(verifyChain(await store.listAudit("chain-a", { limit: 100 }))).toMatchObject({
      ok: false,
      brokenAt: { id: victim, reason: "hash does not match the event's contents" },
    });
    await raw(`DELETE FROM audit_events WHERE seq = ${victim}`);
    expect(verifyChain(await store.listAudit("chain-a", { limit: 100 }))).toMatchObject({
      ok: false,
      brokenAt: { id: a[2]?.id, reason: "prevHash is not the previous event's hash" },
    });
  });

  it("has an AuditLog commit after the current turn (after the answer), and flush() waits for it", async () => {
    const log = new AuditLog(store, () => {});
    const recorded = ["a", "b", "c"].map((target) =>
      log.record({
        at: new Date().toISOString(),
        orgId: "batched",
        keyId: "key_x",
        action: "sandbox.exec",
        target,
        outcome: "ok",
        status: 200,
        durationMs: 1,
      }),
    );
    // Nothing reached the store yet: the request that recorded them is still answering.
    if (name === "sqlite") expect(await store.listAudit("batched", { limit: 10 })).toEqual([]);
    await log.flush();
    const stored = await store.listAudit("batched", { limit: 10 });
    expect(stored.map((e) => e.target)).toEqual(["a", "b", "c"]);
    expect((await Promise.all(recorded)).map((e) => e?.id)).toEqual(stored.map((e) => e.id));
    expect(verifyChain(stored)).toMatchObject({ ok: true });
  });

  it("keeps one chain per organisation across two stores on one database (two server processes)", async () => {
    const other = await open();
    try {
      const event = (orgId: string, n: number) => ({
        at: new Date().toISOString(),
        orgId,
        keyId: "key_x",
        action: "sandbox.exec",
        target: "t",
        detail: { command: `echo ${n}` },
        outcome: "ok",
        status: 200,
        durationMs: 1,
      });
      // One after the other, the organisations interleaved: each append's newest event is often
      // the other organisation's, and often the other store's.
      for (let n = 0; n < 6; n++) {
        await (n % 2 === 0 ? store : other).appendAudit([event(n % 3 === 0 ? "two-a" : "two-b", n)]);
      }
      // At once from both stores (PostgreSQL: two processes in one thread would hold SQLite's
      // write lock against each other): the loser of each race for the next seq tries again on
      // the chain as it now is; none is lost, no chain forks.
      const racing = name === "postgres" ? 8 : 0;
      const settled = await Promise.allSettled(
        Array.from({ length: racing }, (_, n) =>
          (n % 2 === 0 ? store : other).appendAudit([event("two-a", 100 + n), event("two-b", 100 + n)]),
        ),
      );
      expect(settled.filter((r) => r.status === "rejected")).toEqual([]);
      const a = await store.listAudit("two-a", { limit: 100 });
      const b = await other.listAudit("two-b", { limit: 100 });
      expect(a).toHaveLength(2 + racing);
      expect(b).toHaveLength(4 + racing);
      expect(verifyChain(a)).toEqual({ ok: true, checked: 2 + racing });
      expect(verifyChain(b)).toEqual({ ok: true, checked: 4 + racing });
      const ids = [...a, ...b].map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await other.close();
    }
  });

  it("keeps webhooks and their deliveries; changes quotas", async () => {
    await store.createOrg({ id: "o-wh", name: "wh", quotas: {}, createdAt: "x" });
    expect(await store.setOrgQuotas("o-wh", { maxSandboxes: 2 })).toBe(true);
    expect((await store.getOrg("o-wh"))?.quotas).toEqual({ maxSandboxes: 2 });
    expect(await store.setOrgQuotas("o-none", {})).toBe(false);
    const hook = {
      id: "wh_1",
      orgId: "o-wh",
      url: "https://x/y",
      events: ["sandbox.created"],
      secret: "whsec_AA==",
      createdAt: "2026-01-01T00:00:00.000Z",
    };
    await store.createWebhook(hook);
    expect(await store.getWebhook("wh_1")).toEqual(hook);
    expect(await store.listWebhooks("o-wh")).toEqual([hook]);
    const d = {
      id: "msg_1",
      webhookId: "wh_1",
      orgId: "o-wh",
      event: "sandbox.created",
      payload: "{}",
      status: "pending",
      attempts: 0,
      nextAt: "2026-01-01T00:00:00.000Z",
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
    };
    await store.addDeliveries([d]);
    expect(await store.dueDeliveries("2026-01-01T00:00:01.000Z", 10)).toEqual([d]);
    expect(await store.dueDeliveries("2025-12-31T00:00:00.000Z", 10)).toEqual([]);
    await store.updateDelivery("msg_1", {
      status: "delivered",
      attempts: 2,
      nextAt: d.nextAt,
      updatedAt: d.updatedAt,
      lastError: "HTTP 500",
    });
    expect(await store.listDeliveries("wh_1", 10)).toEqual([
      { ...d, status: "delivered", attempts: 2, lastError: "HTTP 500" },
    ]);
    expect(await store.dueDeliveries("2026-01-01T00:00:01.000Z", 10)).toEqual([]);
    expect(await store.deleteWebhook("wh_1")).toBe(true);
    expect(await store.deleteWebhook("wh_1")).toBe(false);
    expect(await store.listDeliveries("wh_1", 10)).toEqual([]);
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
    const made = await t.api("POST", "/v1/keys", { body: { name: "pg", scopes: ["sandboxes:read"] } });
    expect(made.status).toBe(201);
    expect((await t.api("POST", "/v1/sandboxes", { body: {}, key: made.body.key })).status).toBe(403);
    await t.restart();
    expect((await t.api("GET", "/v1/snapshots")).status).toBe(200);
    expect((await t.api("GET", "/v1/sandboxes", { key: made.body.key })).status).toBe(200);
    expect((await t.api("DELETE", `/v1/keys/${made.body.id}`)).status).toBe(204);
    expect((await t.api("GET", "/v1/sandboxes", { key: made.body.key })).status).toBe(401);
    const events = (await t.api("GET", "/v1/audit")).body.events;
    expect(events.map((e: { action: string }) => e.action)).toEqual([
      "key.create",
      "sandbox.create",
      "key.revoke",
      "key.use",
    ]);
    expect(events[1].outcome).toBe("denied");
    expect(verifyChain(events).ok).toBe(true);
    await t.server.close();
  });
});
