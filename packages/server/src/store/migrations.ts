/**
 * The schema, as numbered migrations that both SQLite and PostgreSQL run unchanged: portable
 * types only (TEXT, INTEGER; timestamps as ISO-8601 text, JSON as text). Append, never edit.
 */
export const MIGRATIONS: readonly { version: number; sql: string[] }[] = [
  {
    version: 1,
    sql: [
      `CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        quotas TEXT NOT NULL,
        created_at TEXT NOT NULL
      )`,
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        sandbox_id TEXT,
        expires_at TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
      )`,
      "CREATE INDEX api_keys_org ON api_keys (org_id)",
    ],
  },
];
