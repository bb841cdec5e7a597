/**
 * API keys: `kiln_` + 32 random bytes (base64url), stored only as an HMAC-SHA256 under a server
 * secret that lives in the data dir (mode 0600), compared in constant time. A database dump
 * alone therefore cannot be used to test guesses offline.
 */
import { createHmac, hash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Store } from "../store/store.ts";
import { DEFAULT_ORG_ID } from "./principal.ts";

export const KEY_PREFIX = "kiln_";
const SECRET_FILE = "server.secret";
export const ADMIN_KEY_FILE = "admin.key";

export function newKey(): string {
  return KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString("base64url").replace(/[-_]/g, "x")}`;
}

/** The first characters of a key: enough to tell keys apart in a list, useless to an attacker. */
export function keyDisplayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 6);
}

/** How many verified keys KeyHasher.lookupHash remembers (the map is emptied when full). */
const VERIFIED_MAX = 10_000;

export class KeyHasher {
  readonly #secret: Buffer;
  /**
   * The stored hash (the HMAC) of keys that were found in the store, by the key's plain SHA-256:
   * every request's key lookup otherwise pays an HMAC (an OpenSSL MAC context made and freed
   * each time), several times the cost of the one-shot digest. Memory only, and only for keys
   * that verified (a flood of guesses cannot fill it); what the store holds is unchanged.
   */
  readonly #verified = new Map<string, string>();

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  hash(key: string): string {
    return createHmac("sha256", this.#secret).update(key, "utf8").digest("hex");
  }

  /** hash(key), answered from memory for a key that verified() before. */
  lookupHash(key: string): string {
    return this.#verified.get(hash("sha256", key, "base64")) ?? this.hash(key);
  }

  /** Remembers a key the store knows under `stored` (= hash(key)), for lookupHash. */
  verified(key: string, stored: string): void {
    const digest = hash("sha256", key, "base64");
    if (this.#verified.get(digest) === stored) return;
    if (this.#verified.size >= VERIFIED_MAX) this.#verified.clear();
    this.#verified.set(digest, stored);
  }

  /** Constant-time comparison of two hex digests of equal length. */
  static same(a: string, b: string): boolean {
    const x = Buffer.from(a, "hex");
    const y = Buffer.from(b, "hex");
    return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
  }
}

/** The server secret, made on first use (32 random bytes, mode 0600). */
export async function loadSecret(dataDir: string): Promise<Buffer> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, SECRET_FILE);
  try {
    const hex = (await readFile(path, "utf8")).trim();
    if (!/^[0-9a-f]{64}$/.test(hex))
      throw new Error(
        `${path} is not a server secret (64 hex characters); restore it or remove it (every key then stops working)`,
      );
    return Buffer.from(hex, "hex");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const secret = randomBytes(32);
  // wx: two servers starting at once must not overwrite each other's secret.
  await writeFile(path, `${secret.toString("hex")}\n`, { mode: 0o600, flag: "wx" }).catch(async (err) => {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  });
  await chmod(path, 0o600);
  return Buffer.from((await readFile(path, "utf8")).trim(), "hex");
}

/**
 * First start (no key in the store): the `default` organisation and an admin key with scope
 * `*`. `adminKey` (KILN_ADMIN_KEY) is that key when given; otherwise a new one is written to
 * <dataDir>/admin.key (0600) and returned. A later start with an `adminKey` the store does not
 * know adds it as another admin key, so rotating KILN_ADMIN_KEY works.
 */
export async function bootstrap(
  store: Store,
  hasher: KeyHasher,
  options: { dataDir: string; adminKey?: string },
): Promise<{ createdAdminKey?: string }> {
  if (options.adminKey !== undefined && options.adminKey.length < 16) {
    throw new Error("KILN_ADMIN_KEY must be at least 16 characters long");
  }
  return store.transaction(async (tx) => {
    const now = new Date().toISOString();
    if (!(await tx.getOrg(DEFAULT_ORG_ID))) {
      await tx.createOrg({ id: DEFAULT_ORG_ID, name: "default", quotas: {}, createdAt: now });
    }
    const first = (await tx.countKeys()) === 0;
    if (!first && (options.adminKey === undefined || (await tx.findKeyByHash(hasher.hash(options.adminKey))))) {
      return {};
    }
    const key = options.adminKey ?? newKey();
    await tx.createKey({
      id: newId("key"),
      orgId: DEFAULT_ORG_ID,
      name: options.adminKey === undefined ? "admin" : "admin (KILN_ADMIN_KEY)",
      prefix: keyDisplayPrefix(key),
      hash: hasher.hash(key),
      scopes: ["*"],
      createdAt: now,
    });
    if (options.adminKey !== undefined) return {};
    const path = join(options.dataDir, ADMIN_KEY_FILE);
    await writeFile(path, `${key}\n`, { mode: 0o600 });
    await chmod(path, 0o600);
    return { createdAdminKey: key };
  });
}
