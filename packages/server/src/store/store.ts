/**
 * Everything the server keeps: organisations, API keys, the audit log, webhooks and their
 * deliveries. One interface, one SQL implementation (sql-store.ts)
 * over two drivers: SQLite (node:sqlite, the default) and PostgreSQL (pg), sharing migrations.
 */

/** "none" | "egress" | { allow: string[] }, as in CreateSandboxOptions. */
export type NetworkPolicy = "none" | "egress" | { allow: string[] };

export interface OrgNetwork {
  /** What a create without `network` gets. */
  default?: NetworkPolicy;
  /** The widest policy a key may give a sandbox (create or network update). */
  ceiling?: NetworkPolicy;
}

export interface OrgRow {
  id: string;
  name: string;
  quotas: Record<string, number>;
  network?: OrgNetwork;
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

/** One audit event, exactly as GET /v1/audit answers it (this key order is hashed). */
export interface AuditEvent {
  id: number;
  at: string;
  orgId: string;
  keyId: string | null;
  action: string;
  target: string | null;
  detail?: Record<string, unknown>;
  /** "ok" | "denied" | "error" */
  outcome: string;
  status: number;
  durationMs: number;
  prevHash: string;
  hash: string;
}

export type NewAuditEvent = Omit<AuditEvent, "id" | "prevHash" | "hash">;

export interface WebhookRow {
  id: string;
  orgId: string;
  url: string;
  events: string[];
  /** whsec_…: needed to sign, so kept as is (never answered after the create). */
  secret: string;
  createdAt: string;
}

export interface DeliveryRow {
  id: string;
  webhookId: string;
  orgId: string;
  event: string;
  /** The exact body sent (signed as is). */
  payload: string;
  /** "pending" | "delivered" | "failed" */
  status: string;
  attempts: number;
  lastError?: string;
  nextAt: string;
  createdAt: string;
  updatedAt: string;
}

/** A snapshot's or volume's shortened core name and the name its organisation gave it. */
export interface EngineNameRow {
  orgId: string;
  kind: "snapshot" | "volume";
  coreName: string;
  name: string;
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
  setOrgQuotas(id: string, quotas: Record<string, number>): Promise<boolean>;
  setOrgNetwork(id: string, network: OrgNetwork): Promise<boolean>;
  /** Appends events to their organisation's hash chain, in order, in one transaction. */
  appendAudit(events: NewAuditEvent[]): Promise<AuditEvent[]>;
  /** An organisation's events in chain order: after `after` (an id), or the newest `limit`. */
  listAudit(orgId: string, options: { after?: number; limit: number }): Promise<AuditEvent[]>;
  createWebhook(hook: WebhookRow): Promise<void>;
  getWebhook(id: string): Promise<WebhookRow | undefined>;
  listWebhooks(orgId?: string): Promise<WebhookRow[]>;
  /** Deletes the webhook and its delivery history; false when there was none. */
  deleteWebhook(id: string): Promise<boolean>;
  addDeliveries(rows: DeliveryRow[]): Promise<void>;
  /** Pending deliveries due at `now`, oldest first. */
  dueDeliveries(now: string, limit: number): Promise<DeliveryRow[]>;
  updateDelivery(
    id: string,
    change: Pick<DeliveryRow, "status" | "attempts" | "nextAt" | "updatedAt"> & { lastError?: string },
  ): Promise<void>;
  listDeliveries(webhookId: string, limit: number): Promise<DeliveryRow[]>;
  /** Remembers the user's name of a shortened snapshot or volume core name (idempotent). */
  rememberName(row: EngineNameRow): Promise<void>;
  /** An organisation's shortened core names of a kind, each with the user's name. */
  namesOf(orgId: string, kind: EngineNameRow["kind"]): Promise<Map<string, string>>;
  forgetName(orgId: string, kind: EngineNameRow["kind"], coreName: string): Promise<void>;
  /** Runs `fn` in one transaction (first-start bootstrap, later quota checks). */
  transaction<T>(fn: (store: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
