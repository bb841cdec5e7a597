/**
 * Everything the server keeps (organisations and API keys now; audit events, webhooks and
 * quota counters are issue 11's tables). One interface, one SQL implementation (sql-store.ts)
 * over two drivers: SQLite (node:sqlite, the default) and PostgreSQL (pg), sharing migrations.
 */

export interface OrgRow {
  id: string;
  name: string;
  quotas: Record<string, number>;
  createdAt: string;
}

export interface KeyRow {
  id: string;
  orgId: string;
  name: string;
  /** The first characters of the key, for people to tell keys apart; never enough to use it. */
  prefix: string;
  /** Lowercase hex HMAC-SHA256 of the key under the server secret. */
  hash: string;
  scopes: string[];
  sandboxId?: string;
  expiresAt?: string;
  createdAt: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

export interface Store {
  readonly kind: "sqlite" | "postgres";
  createOrg(org: OrgRow): Promise<void>;
  getOrg(id: string): Promise<OrgRow | undefined>;
  listOrgs(): Promise<OrgRow[]>;
  createKey(key: KeyRow): Promise<void>;
  findKeyByHash(hash: string): Promise<KeyRow | undefined>;
  getKey(id: string): Promise<KeyRow | undefined>;
  listKeys(orgId?: string): Promise<KeyRow[]>;
  /** Returns false when there was no such unrevoked key. */
  revokeKey(id: string, at: string): Promise<boolean>;
  touchKey(id: string, at: string): Promise<void>;
  countKeys(): Promise<number>;
  /** Runs `fn` in one transaction (first-start bootstrap, later quota checks). */
  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
