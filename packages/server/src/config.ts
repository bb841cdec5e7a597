/**
 * The server's settings: defaults in one place, the environment read in one function.
 * `kiln serve` puts its flags over serverConfigFromEnv() over these defaults.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { Engine, Kiln } from "@kiln/core";

export interface ServerConfig {
  /** @default "127.0.0.1" (loopback only: exposing Kiln is a decision, not a default) */
  host: string;
  /** 0 picks any free port. @default 7420 */
  port: number;
  /** Database (SQLite), server secret and admin.key live here. @default ~/.kiln */
  dataDir: string;
  /** Unset: SQLite (node:sqlite) in dataDir; "postgres://...": PostgreSQL. */
  databaseUrl?: string;
  /**
   * Warm pool size of the default shape, or one pool per shape
   * (`[{ size: 2 }, { size: 1, image: "ds" }, { size: 1, snapshot: "base" }]`). @default 0
   */
  pool: number | { size: number; image?: string; snapshot?: string }[];
  /** Larger uploads get 413. @default 4096 */
  maxUploadMb: number;
  /** The address clients reach this server at (preview URLs). @default the listening address */
  publicUrl?: string;
  /** The admin key to store on first start. @default a new random key written to <dataDir>/admin.key */
  adminKey?: string;
  /** KILN_ADMISSION_URL: asked before create, exec, code, pty and network changes. @default none */
  admissionUrl?: string;
  /** KILN_ADMISSION_TIMEOUT_MS: no answer within it denies. @default 2000 */
  admissionTimeoutMs?: number;
  /** KILN_ALLOW_PRIVATE_HOOKS=true: webhook and admission URLs may be loopback/private. @default false */
  allowPrivateHooks?: boolean;
  /** Webhook delivery timing. @default { timeoutMs: 10000, backoffMs: 1000, maxAttempts: 8 } */
  webhooks?: { timeoutMs?: number; backoffMs?: number; maxAttempts?: number };
  /** KILN_DOCS_DIR: the built documentation site served at /docs (`pnpm docs:build`). @default docs-site/ in the repository */
  docsDir?: string;
  /**
   * KILN_SSE_KEEPALIVE_MS: a stream (exec, code, logs, image builds) that has been silent this
   * long gets an SSE comment line, so clients and proxies do not cut a long quiet command. @default 15000
   */
  sseKeepAliveMs?: number;
  /** Inject a Kiln (tests). @default new Kiln({ pool, engine }) */
  kiln?: Kiln;
  /** The engine of the server's own Kiln (`kiln serve --engine kubernetes`). @default Docker */
  engine?: Engine;
  /** Where the server's log lines go. @default stderr */
  log?: (line: string) => void;
}

export const DEFAULT_PORT = 7420;
export const DEFAULT_MAX_UPLOAD_MB = 4096;
/** How long close() waits for in-flight requests before cutting them off. */
export const SHUTDOWN_GRACE_MS = 10_000;

export function defaultConfig(): ServerConfig {
  return {
    host: "127.0.0.1",
    port: DEFAULT_PORT,
    dataDir: join(homedir(), ".kiln"),
    pool: 0,
    maxUploadMb: DEFAULT_MAX_UPLOAD_MB,
  };
}

/**
 * KILN_HOST, KILN_PORT, KILN_DATA_DIR, KILN_DATABASE_URL, KILN_POOL, KILN_MAX_UPLOAD_MB,
 * KILN_PUBLIC_URL, KILN_ADMIN_KEY, KILN_ADMISSION_URL, KILN_ADMISSION_TIMEOUT_MS,
 * KILN_ALLOW_PRIVATE_HOOKS, KILN_DOCS_DIR, KILN_SSE_KEEPALIVE_MS.
 */
export function serverConfigFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ServerConfig> {
  const out: Partial<ServerConfig> = {};
  const set = (name: string, apply: (value: string) => void) => {
    const value = env[name];
    if (value !== undefined && value !== "") apply(value);
  };
  set("KILN_HOST", (v) => {
    out.host = v;
  });
  set("KILN_PORT", (v) => {
    out.port = integer("KILN_PORT", v, 0, 65_535);
  });
  set("KILN_DATA_DIR", (v) => {
    out.dataDir = v;
  });
  set("KILN_DATABASE_URL", (v) => {
    out.databaseUrl = v;
  });
  set("KILN_POOL", (v) => {
    out.pool = v.trim().startsWith("[") ? poolList("KILN_POOL", v) : integer("KILN_POOL", v, 0, 256);
  });
  set("KILN_MAX_UPLOAD_MB", (v) => {
    out.maxUploadMb = integer("KILN_MAX_UPLOAD_MB", v, 1, 1024 * 1024);
  });
  set("KILN_PUBLIC_URL", (v) => {
    out.publicUrl = v;
  });
  set("KILN_ADMIN_KEY", (v) => {
    out.adminKey = v;
  });
  set("KILN_ADMISSION_URL", (v) => {
    out.admissionUrl = v;
  });
  set("KILN_ADMISSION_TIMEOUT_MS", (v) => {
    out.admissionTimeoutMs = integer("KILN_ADMISSION_TIMEOUT_MS", v, 1, 600_000);
  });
  set("KILN_ALLOW_PRIVATE_HOOKS", (v) => {
    if (v !== "true" && v !== "false") throw new Error(`KILN_ALLOW_PRIVATE_HOOKS must be true or false, got "${v}"`);
    out.allowPrivateHooks = v === "true";
  });
  set("KILN_DOCS_DIR", (v) => {
    out.docsDir = v;
  });
  set("KILN_SSE_KEEPALIVE_MS", (v) => {
    out.sseKeepAliveMs = integer("KILN_SSE_KEEPALIVE_MS", v, 100, 3_600_000);
  });
  return out;
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** A JSON list of pools, `[{ "size": 2 }, { "size": 1, "image": "ds" }]` (Kiln checks the entries). */
export function poolList(field: string, text: string): { size: number; image?: string; snapshot?: string }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${field}: not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((p) => typeof p !== "object" || p === null || Array.isArray(p))) {
    throw new Error(`${field}: must be a JSON list of { size, image?, snapshot? }`);
  }
  return parsed as { size: number; image?: string; snapshot?: string }[];
}
