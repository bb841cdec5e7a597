/** The Store over any SqlDriver: the same statements on SQLite and PostgreSQL. */
import { join } from "node:path";
import { eventHash, GENESIS_HASH } from "../audit/chain.ts";
import type { SqlDriver, SqlRow, SqlValue } from "./driver.ts";
import { MIGRATIONS } from "./migrations.ts";
import { PostgresDriver } from "./postgres.ts";
import { SqliteDriver } from "./sqlite.ts";
import type {
  AuditEvent,
  DeliveryRow,
  EngineNameRow,
  KeyRow,
  NewAuditEvent,
  OrgNetwork,
  OrgRow,
  Store,
  WebhookRow,
} from "./store.ts";

const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));

function orgFrom(row: SqlRow): OrgRow {
  const network = str(row.network);
  return {
    id: String(row.id),
    name: String(row.name),
    quotas: JSON.parse(String(row.quotas)) as Record<string, number>,
    ...(network === undefined ? {} : { network: JSON.parse(network) as OrgNetwork }),
    createdAt: String(row.created_at),
  };
}

function keyFrom(row: SqlRow): KeyRow {
  const key: KeyRow = {
    id: String(row.id),
    orgId: String(row.org_id),
    name: String(row.name),
    prefix: String(row.prefix),
    hash: String(row.hash),
    scopes: JSON.parse(String(row.scopes)) as string[],
    createdAt: String(row.created_at),
  };
  const optional = {
    sandboxId: row.sandbox_id,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
  for (const [k, v] of Object.entries(optional)) {
    const value = str(v);
    if (value !== undefined) (key as unknown as Record<string, string>)[k] = value;
  }
  return key;
}

function auditFrom(row: SqlRow): AuditEvent {
  const detail = str(row.detail);
  return {
    id: Number(row.seq),
    at: String(row.at),
    orgId: String(row.org_id),
    keyId: str(row.key_id) ?? null,
    action: String(row.action),
    target: str(row.target) ?? null,
    ...(detail === undefined ? {} : { detail: JSON.parse(detail) as Record<string, unknown> }),
    outcome: String(row.outcome),
    status: Number(row.status),
    durationMs: Number(row.duration_ms),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

function webhookFrom(row: SqlRow): WebhookRow {
  return {
    id: String(row.id),
    orgId: String(row.org_id),
    url: String(row.url),
    events: JSON.parse(String(row.events)) as string[],
    secret: String(row.secret),
    createdAt: String(row.created_at),
  };
}

function deliveryFrom(row: SqlRow): DeliveryRow {
  const lastError = str(row.last_error);
  return {
    id: String(row.id),
    webhookId: String(row.webhook_id),
    orgId: String(row.org_id),
    event: String(row.event),
    payload: String(row.payload),
    status: String(row.status),
    attempts: Number(row.attempts),
    ...(lastError === undefined ? {} : { lastError }),
    nextAt: String(row.next_at),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}

/** Tries of one audit append that lost the race for the next `seq` to another process. */
const AUDIT_APPEND_ATTEMPTS = 8;
const AUDIT_COLUMNS = "seq, org_id, at, key_id, action, target, detail, outcome, status, duration_ms, prev_hash, hash";
const DELIVERY_COLUMNS =
  "id, webhook_id, org_id, event, payload, status, attempts, last_error, next_at, created_at, updated_at";

const KEY_COLUMNS =
  "id, org_id, name, prefix, hash, scopes, sandbox_id, expires_at, created_at, revoked_at, last_used_at";

/**
 * How long a key found by its hash is answered from memory. Every authenticated request looks
 * its key up; within this window the row comes from a map instead of the database. A revoke
 * through this store drops the key at once (its next request is refused); a revoke made by
 * another server on the same PostgreSQL database takes effect here within this window.
 * Expiry is checked on every request against the row's expiresAt, so it is exact. Unknown keys
 * are never cached (a flood of guesses cannot fill the map).
 */
export const KEY_CACHE_MS = 2_000;
const KEY_CACHE_MAX = 10_000;

/** Verified keys by hash, shared by a store and the transactions it opens. */
class KeyCache {
  readonly #rows = new Map<string, { row: KeyRow; until: number }>();
  /** Bumped by every forget: a lookup that began before a revoke does not cache what it read. */
  epoch = 0;

  get(hash: string, now: number): KeyRow | undefined {
    const hit = this.#rows.get(hash);
    if (hit === undefined) return undefined;
    if (hit.until > now) return hit.row;
    this.#rows.delete(hash);
    return undefined;
  }

  set(row: KeyRow, now: number, epoch: number): void {
    if (epoch !== this.epoch) return;
    if (this.#rows.size >= KEY_CACHE_MAX) this.#rows.clear();
    this.#rows.set(row.hash, { row, until: now + KEY_CACHE_MS });
  }

  forget(id: string): void {
    this.epoch++;
    for (const [hash, { row }] of this.#rows) if (row.id === id) this.#rows.delete(hash);
  }
}

export class SqlStore implements Store {
  readonly kind: "sqlite" | "postgres";
  readonly #db: SqlDriver;
  readonly #keys: KeyCache;

  constructor(db: SqlDriver, keys: KeyCache = new KeyCache()) {
    this.#db = db;
    this.kind = db.dialect;
    this.#keys = keys;
  }

  /** Applies every migration not applied yet, each in its own transaction. */
  async migrate(): Promise<void> {
    await this.#db.run(
      "CREATE TABLE IF NOT EXISTS kiln_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    );
    for (const migration of MIGRATIONS) {
      await this.#db.transaction(async (tx) => {
        const done = await tx.all("SELECT version FROM kiln_migrations WHERE version = ?", [migration.version]);
        if (done.length > 0) return;
        for (const statement of migration.sql) await tx.run(statement);
        await tx.run("INSERT INTO kiln_migrations (version, applied_at) VALUES (?, ?)", [
          migration.version,
          new Date().toISOString(),
        ]);
      });
    }
  }

  async createOrg(org: OrgRow): Promise<void> {
    await this.#db.run("INSERT INTO orgs (id, name, quotas, network, created_at) VALUES (?, ?, ?, ?, ?)", [
      org.id,
      org.name,
      JSON.stringify(org.quotas),
      org.network === undefined ? null : JSON.stringify(org.network),
      org.createdAt,
    ]);
  }

  async getOrg(id: string): Promise<OrgRow | undefined> {
    const [row] = await this.#db.all("SELECT * FROM orgs WHERE id = ?", [id]);
    return row ? orgFrom(row) : undefined;
  }

  async listOrgs(): Promise<OrgRow[]> {
    return (await this.#db.all("SELECT * FROM orgs ORDER BY created_at, id")).map(orgFrom);
  }

  async createKey(key: KeyRow): Promise<void> {
    const values: SqlValue[] = [
      key.id,
      key.orgId,
      key.name,
      key.prefix,
      key.hash,
      JSON.stringify(key.scopes),
      key.sandboxId ?? null,
      key.expiresAt ?? null,
      key.createdAt,
      key.revokedAt ?? null,
      key.lastUsedAt ?? null,
    ];
    await this.#db.run(`INSERT INTO api_keys (${KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, values);
  }

  /** Answered from memory for KEY_CACHE_MS after a lookup found it (see KeyCache). */
  async findKeyByHash(hash: string): Promise<KeyRow | undefined> {
    const now = Date.now();
    const cached = this.#keys.get(hash, now);
    if (cached) return cached;
    const epoch = this.#keys.epoch;
    const [row] = await this.#db.all(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE hash = ?`, [hash]);
    if (!row) return undefined;
    const key = keyFrom(row);
    this.#keys.set(key, now, epoch);
    return key;
  }

  async getKey(id: string): Promise<KeyRow | undefined> {
    const [row] = await this.#db.all(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`, [id]);
    return row ? keyFrom(row) : undefined;
  }

  async listKeys(orgId?: string): Promise<KeyRow[]> {
    const rows =
      orgId === undefined
        ? await this.#db.all(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`)
        : await this.#db.all(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at, id`, [orgId]);
    return rows.map(keyFrom);
  }

  async revokeKey(id: string, at: string): Promise<boolean> {
    // Before and after the write: no lookup that read the row as it was caches it (KeyCache.epoch).
    this.#keys.forget(id);
    try {
      return (
        (await this.#db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [at, id])) > 0
      );
    } finally {
      this.#keys.forget(id);
    }
  }

  async touchKey(id: string, at: string): Promise<void> {
    await this.#db.run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [at, id]);
  }

  async countKeys(): Promise<number> {
    const [row] = await this.#db.all("SELECT COUNT(*) AS n FROM api_keys");
    return Number(row?.n ?? 0);
  }

  async setOrgQuotas(id: string, quotas: Record<string, number>): Promise<boolean> {
    return (await this.#db.run("UPDATE orgs SET quotas = ? WHERE id = ?", [JSON.stringify(quotas), id])) > 0;
  }

  async setOrgNetwork(id: string, network: OrgNetwork): Promise<boolean> {
    const value = Object.keys(network).length === 0 ? null : JSON.stringify(network);
    return (await this.#db.run("UPDATE orgs SET network = ? WHERE id = ?", [value, id])) > 0;
  }

  /**
   * One transaction per batch, so that the chain stays whole whoever else appends (another
   * server process on the same database): the newest event is read inside it, the next `seq`
   * is one past it, and a concurrent append that read the same newest event fails on `seq`'s
   * primary key instead of forking a chain. The newest event overall is also its
   * organisation's chain head, so a batch of that organisation (one server, one organisation:
   * every request) needs no second lookup. The append that lost such a race (PostgreSQL's
   * unique violation: SQLite's BEGIN IMMEDIATE never lets two in) is tried again on the chain
   * as it now is, a few times, so that no event is lost to another server's append.
   */
  async appendAudit(events: NewAuditEvent[]): Promise<AuditEvent[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#appendAuditOnce(events);
      } catch (err) {
        if (attempt >= AUDIT_APPEND_ATTEMPTS || (err as { code?: unknown }).code !== "23505") throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
  }

  #appendAuditOnce(events: NewAuditEvent[]): Promise<AuditEvent[]> {
    return this.#db.transaction(async (tx) => {
      const [newest] = await tx.all("SELECT seq, org_id, hash FROM audit_events ORDER BY seq DESC LIMIT 1");
      let seq = Number(newest?.seq ?? 0);
      const last = new Map<string, string>();
      if (newest) last.set(String(newest.org_id), String(newest.hash));
      const out: AuditEvent[] = [];
      for (const e of events) {
        let prevHash = last.get(e.orgId);
        if (prevHash === undefined && newest !== undefined) {
          const [row] = await tx.all("SELECT hash FROM audit_events WHERE org_id = ? ORDER BY seq DESC LIMIT 1", [
            e.orgId,
          ]);
          if (row) prevHash = String(row.hash);
        }
        prevHash ??= GENESIS_HASH;
        // Normalised through JSON, so the stored detail reads back exactly as it was hashed.
        const detailJson = e.detail === undefined ? undefined : JSON.stringify(e.detail);
        const detail = detailJson === undefined ? undefined : (JSON.parse(detailJson) as Record<string, unknown>);
        const body = { ...e, id: ++seq, prevHash, ...(detail === undefined ? {} : { detail }) };
        if (detail === undefined) delete body.detail;
        const event: AuditEvent = { ...body, hash: eventHash(body) };
        await tx.run(`INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          event.id,
          event.orgId,
          event.at,
          event.keyId,
          event.action,
          event.target,
          detailJson ?? null,
          event.outcome,
          event.status,
          event.durationMs,
          event.prevHash,
          event.hash,
        ]);
        last.set(e.orgId, event.hash);
        out.push(event);
      }
      return out;
    });
  }

  async listAudit(orgId: string, options: { after?: number; limit: number }): Promise<AuditEvent[]> {
    if (options.after !== undefined) {
      const rows = await this.#db.all(
        `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
        [orgId, options.after, options.limit],
      );
      return rows.map(auditFrom);
    }
    const rows = await this.#db.all(
      `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE org_id = ? ORDER BY seq DESC LIMIT ?`,
      [orgId, options.limit],
    );
    return rows.map(auditFrom).reverse();
  }

  async createWebhook(hook: WebhookRow): Promise<void> {
    await this.#db.run("INSERT INTO webhooks (id, org_id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)", [
      hook.id,
      hook.orgId,
      hook.url,
      JSON.stringify(hook.events),
      hook.secret,
      hook.createdAt,
    ]);
  }

  async getWebhook(id: string): Promise<WebhookRow | undefined> {
    const [row] = await this.#db.all("SELECT * FROM webhooks WHERE id = ?", [id]);
    return row ? webhookFrom(row) : undefined;
  }

  async listWebhooks(orgId?: string): Promise<WebhookRow[]> {
    const rows =
      orgId === undefined
        ? await this.#db.all("SELECT * FROM webhooks ORDER BY created_at, id")
        : await this.#db.all("SELECT * FROM webhooks WHERE org_id = ? ORDER BY created_at, id", [orgId]);
    return rows.map(webhookFrom);
  }

  deleteWebhook(id: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      await tx.run("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [id]);
      return (await tx.run("DELETE FROM webhooks WHERE id = ?", [id])) > 0;
    });
  }

  async addDeliveries(rows: DeliveryRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#db.transaction(async (tx) => {
      for (const d of rows) {
        await tx.run(`INSERT INTO webhook_deliveries (${DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          d.id,
          d.webhookId,
          d.orgId,
          d.event,
          d.payload,
          d.status,
          d.attempts,
          d.lastError ?? null,
          d.nextAt,
          d.createdAt,
          d.updatedAt,
        ]);
      }
    });
  }

  async dueDeliveries(now: string, limit: number): Promise<DeliveryRow[]> {
    const rows = await this.#db.all(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`,
      [now, limit],
    );
    return rows.map(deliveryFrom);
  }

  async updateDelivery(
    id: string,
    change: Pick<DeliveryRow, "status" | "attempts" | "nextAt" | "updatedAt"> & { lastError?: string },
  ): Promise<void> {
    await this.#db.run(
      "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_at = ?, updated_at = ?, last_error = ? WHERE id = ?",
      [change.status, change.attempts, change.nextAt, change.updatedAt, change.lastError ?? null, id],
    );
  }

  async listDeliveries(webhookId: string, limit: number): Promise<DeliveryRow[]> {
    const rows = await this.#db.all(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
      [webhookId, limit],
    );
    return rows.map(deliveryFrom);
  }

  async rememberName(row: EngineNameRow): Promise<void> {
    await this.#db.run(
      "INSERT INTO engine_names (org_id, kind, core_name, name) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      [row.orgId, row.kind, row.coreName, row.name],
    );
  }

  async namesOf(orgId: string, kind: EngineNameRow["kind"]): Promise<Map<string, string>> {
    const rows = await this.#db.all("SELECT core_name, name FROM engine_names WHERE org_id = ? AND kind = ?", [
      orgId,
      kind,
    ]);
    return new Map(rows.map((r) => [String(r.core_name), String(r.name)]));
  }

  async forgetName(orgId: string, kind: EngineNameRow["kind"], coreName: string): Promise<void> {
    await this.#db.run("DELETE FROM engine_names WHERE org_id = ? AND kind = ? AND core_name = ?", [
      orgId,
      kind,
      coreName,
    ]);
  }

  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) => fn(new SqlStore(tx, this.#keys)));
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}

/** SQLite in `dataDir` unless `databaseUrl` names PostgreSQL; migrated before it is returned. */
export async function openStore(options: { dataDir: string; databaseUrl?: string }): Promise<SqlStore> {
  const url = options.databaseUrl;
  let driver: SqlDriver;
  if (url === undefined || url === "") driver = new SqliteDriver(join(options.dataDir, "kiln.db"));
  else if (/^postgres(ql)?:\/\//.test(url)) driver = new PostgresDriver(url);
  else if (url.startsWith("sqlite:")) driver = new SqliteDriver(url.slice("sqlite:".length) || ":memory:");
  else throw new Error(`databaseUrl must start with postgres:// or postgresql:// (or sqlite:<path>), got "${url}"`);
  const store = new SqlStore(driver);
  try {
    await store.migrate();
  } catch (err) {
    await driver.close().catch(() => {});
    throw err;
  }
  return store;
}
