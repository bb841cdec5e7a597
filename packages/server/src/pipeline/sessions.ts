/**
 * Browser sessions for the dashboard: `POST /v1/session` trades an API key for a cookie
 * `kiln_session` (HttpOnly, SameSite=Strict, Path=/, Secure on https). The cookie never holds
 * the key: it holds `ks1.<keyId>.<expiresSec>.<nonce>.<signature>`, signed with HMAC-SHA256
 * under a key derived from the server secret. Every request re-reads the key's row, so a revoked
 * or expired key ends its sessions on the next request; signing out forgets the session's nonce
 * (kept in this process until the session would have expired anyway).
 *
 * A cookie rides along on cross-site requests a bearer header never does, so a cookie-authenticated
 * request that changes something must prove it comes from the dashboard's own page (CSRF):
 * its Origin (or, without one, Sec-Fetch-Site) is this server's own, and, unless it is a
 * WebSocket upgrade (a browser cannot add headers to one), it carries `x-kiln-csrf: 1`, which a
 * cross-site form cannot send and a cross-site fetch cannot send without a CORS preflight this
 * server never grants.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { HttpError } from "../errors.ts";
import type { KeyRow } from "../store/store.ts";

export const SESSION_COOKIE = "kiln_session";
export const CSRF_HEADER = "x-kiln-csrf";
/** A session lasts this long (or until its key expires or is revoked, or the user signs out). */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Signed-out sessions remembered at most (the oldest are forgotten first). */
const MAX_ENDED = 100_000;
const VERSION = "ks1";

export interface SessionClaims {
  keyId: string;
  expiresAt: number;
  nonce: string;
}

export class Sessions {
  readonly #key: Buffer;
  readonly #publicUrl: URL | undefined;
  readonly #now: () => number;
  /** nonce -> expiry (ms) of sessions signed out before they expired. */
  readonly #ended = new Map<string, number>();

  constructor(key: Buffer, options: { publicUrl?: string; now?: () => number } = {}) {
    this.#key = key;
    this.#publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl);
    this.#now = options.now ?? Date.now;
  }

  /** A new session for the key (never outliving it). */
  issue(row: KeyRow): { value: string; expiresAt: number } {
    let expiresAt = this.#now() + SESSION_TTL_MS;
    if (row.expiresAt !== undefined) expiresAt = Math.min(expiresAt, Date.parse(row.expiresAt));
    const body = `${VERSION}.${row.id}.${Math.floor(expiresAt / 1000)}.${randomBytes(18).toString("base64url")}`;
    return { value: `${body}.${this.#sign(body)}`, expiresAt };
  }

  /** The claims of a well-formed, correctly signed, unexpired, not signed-out cookie value. */
  verify(value: string | undefined): SessionClaims | undefined {
    if (value === undefined || value.length > 512) return undefined;
    const parts = value.split(".");
    if (parts.length !== 5 || parts[0] !== VERSION) return undefined;
    const [, keyId, exp, nonce, signature] = parts as [string, string, string, string, string];
    if (!/^[A-Za-z0-9_]{1,64}$/.test(keyId) || !/^\d{1,12}$/.test(exp) || !/^[A-Za-z0-9_-]{24}$/.test(nonce)) {
      return undefined;
    }
    const expected = Buffer.from(this.#sign(parts.slice(0, 4).join(".")), "base64url");
    const given = Buffer.from(signature, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expiresAt = Number(exp) * 1000;
    if (expiresAt <= this.#now() || this.#ended.has(nonce)) return undefined;
    return { keyId, expiresAt, nonce };
  }

  /** Signs the session out for good (this process remembers it until it would have expired). */
  end(claims: SessionClaims): void {
    const now = this.#now();
    for (const [nonce, expiresAt] of this.#ended) {
      if (expiresAt <= now || this.#ended.size >= MAX_ENDED) this.#ended.delete(nonce);
    }
    this.#ended.set(claims.nonce, claims.expiresAt);
  }

  /** The Set-Cookie value for a session (or, with no session, the one that clears it). */
  cookie(c: Context, session?: { value: string; expiresAt: number }): string {
    const attributes = ["Path=/", "HttpOnly", "SameSite=Strict"];
    if (this.#secure(c)) attributes.push("Secure");
    if (session === undefined) return [`${SESSION_COOKIE}=`, ...attributes, "Max-Age=0"].join("; ");
    const maxAge = Math.max(0, Math.floor((session.expiresAt - this.#now()) / 1000));
    return [`${SESSION_COOKIE}=${session.value}`, ...attributes, `Max-Age=${maxAge}`].join("; ");
  }

  /** The raw session cookie of the request, if any. */
  static read(c: Context): string | undefined {
    try {
      return getCookie(c, SESSION_COOKIE);
    } catch {
      return undefined;
    }
  }

  /**
   * Throws 403 FORBIDDEN unless a cookie-authenticated request that changes something (or opens
   * a WebSocket) comes from this server's own pages.
   */
  checkCsrf(c: Context): void {
    const method = c.req.method;
    const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
    if (!upgrade && (method === "GET" || method === "HEAD" || method === "OPTIONS")) return;
    const origin = c.req.header("origin");
    if (origin !== undefined && origin !== "null") {
      if (!this.#sameOrigin(c, origin)) {
        throw new HttpError("FORBIDDEN", `CSRF check failed: Origin ${origin} is not this server's origin`);
      }
    } else if (c.req.header("sec-fetch-site") !== "same-origin") {
      throw new HttpError(
        "FORBIDDEN",
        "CSRF check failed: a cookie-authenticated request must carry this server's Origin (or Sec-Fetch-Site: same-origin)",
      );
    }
    if (!upgrade && c.req.header(CSRF_HEADER) !== "1") {
      throw new HttpError("FORBIDDEN", `CSRF check failed: a cookie-authenticated request must send ${CSRF_HEADER}: 1`);
    }
  }

  #sign(body: string): string {
    return createHmac("sha256", this.#key).update(body).digest("base64url");
  }

  #secure(c: Context): boolean {
    if (this.#publicUrl?.protocol === "https:") return true;
    return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
  }

  #sameOrigin(c: Context, origin: string): boolean {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    if (this.#publicUrl !== undefined && parsed.origin === this.#publicUrl.origin) return true;
    // The Host the browser addressed: a cross-site page cannot choose it for the victim's request.
    const host = c.req.header("host");
    return host !== undefined && parsed.host === host && (parsed.protocol === "http:" || parsed.protocol === "https:");
  }
}
