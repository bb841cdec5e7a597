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
  {
    // Issue 11: the audit log (a hash chain per organisation), webhooks and their deliveries.
    version: 2,
    sql: [
      `CREATE TABLE audit_events (
        seq BIGINT PRIMARY KEY,
        org_id TEXT NOT NULL,
        at TEXT NOT NULL,
        key_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT,
        outcome TEXT NOT NULL,
        status INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      "CREATE INDEX audit_events_org ON audit_events (org_id, seq)",
      `CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
      )`,
      "CREATE INDEX webhooks_org ON webhooks (org_id)",
      `CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        org_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        next_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at)",
      "CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at)",
    ],
  },
  {
    // The organisation's network default and ceiling (issue 13's server part), JSON or NULL.
    version: 3,
    sql: ["ALTER TABLE orgs ADD COLUMN network TEXT"],
  },
  {
    // Snapshot and volume names too long for `<orgId>.<name>` in core's 63 characters get a
    // shortened engine name (tenancy/org-scope.ts); this maps it back to the user's name.
    version: 4,
    sql: [
      `CREATE TABLE engine_names (
        org_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        core_name TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (org_id, kind, core_name)
      )`,
    ],
  },
];
