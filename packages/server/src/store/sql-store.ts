/** The Store over any SqlDriver: the same statements on SQLite and PostgreSQL. */
import { join } from "node:path";
import type { SqlDriver, SqlRow, SqlValue } from "./driver.ts";
import { MIGRATIONS } from "./migrations.ts";
import { PostgresDriver } from "./postgres.ts";
import { SqliteDriver } from "./sqlite.ts";
import type { KeyRow, OrgRow, Store } from "./store.ts";

const str = (v: unknown) => (v === null || v === undefined ? undefined : String(v));

function orgFrom(row: SqlRow): OrgRow {
  return {
    id: String(row.id),
    name: String(row.name),
    quotas: JSON.parse(String(row.quotas)) as Record<string, number>,
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

const KEY_COLUMNS =
  "id, org_id, name, prefix, hash, scopes, sandbox_id, expires_at, created_at, revoked_at, last_used_at";

export class SqlStore implements Store {
  readonly kind: "sqlite" | "postgres";
  readonly #db: SqlDriver;

  constructor(db: SqlDriver) {
    this.#db = db;
    this.kind = db.dialect;
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
    await this.#db.run("INSERT INTO orgs (id, name, quotas, created_at) VALUES (?, ?, ?, ?)", [
      org.id,
      org.name,
      JSON.stringify(org.quotas),
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

  async findKeyByHash(hash: string): Promise<KeyRow | undefined> {
    const [row] = await this.#db.all(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE hash = ?`, [hash]);
    return row ? keyFrom(row) : undefined;
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
    return (await this.#db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [at, id])) > 0;
  }

  async touchKey(id: string, at: string): Promise<void> {
    await this.#db.run("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [at, id]);
  }

  async countKeys(): Promise<number> {
    const [row] = await this.#db.all("SELECT COUNT(*) AS n FROM api_keys");
    return Number(row?.n ?? 0);
  }

  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) => fn(new SqlStore(tx)));
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
