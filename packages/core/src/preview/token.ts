/**
 * Preview tokens: `<payload>.<signature>`, both base64url. The payload is the JSON
 * `{ "s": sandboxId, "p": port, "e": expiresAtMs }`; the signature is HMAC-SHA256 of the
 * payload text under a secret that never leaves the Kiln (or server) process. A token opens
 * only its own sandbox and port, until it expires.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export interface PreviewGrant {
  sandboxId: string;
  port: number;
  expiresAt: number;
}

export class PreviewTokens {
  readonly #secret: Buffer;

  /** @param secret at least 32 bytes; default: random, so tokens die with this process */
  constructor(secret: Uint8Array = randomBytes(32)) {
    if (secret.length < 32) throw new Error("a preview token secret needs at least 32 bytes");
    this.#secret = Buffer.from(secret);
  }

  sign(grant: PreviewGrant): string {
    const payload = Buffer.from(JSON.stringify({ s: grant.sandboxId, p: grant.port, e: grant.expiresAt })).toString(
      "base64url",
    );
    return `${payload}.${this.#mac(payload).toString("base64url")}`;
  }

  /** The grant, if the token is genuine, unexpired, and for this sandbox and port; else why not. */
  verify(
    token: string,
    sandboxId: string,
    port: number,
    now = Date.now(),
  ): { ok: true } | { ok: false; reason: string } {
    const [payload, signature, extra] = token.split(".");
    if (!payload || !signature || extra !== undefined || token.length > 2048) return { ok: false, reason: "malformed" };
    const given = Buffer.from(signature, "base64url");
    const expected = this.#mac(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: "invalid" };
    let grant: { s?: unknown; p?: unknown; e?: unknown };
    try {
      grant = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return { ok: false, reason: "malformed" };
    }
    if (grant.s !== sandboxId || grant.p !== port) return { ok: false, reason: "for another sandbox or port" };
    if (typeof grant.e !== "number" || grant.e <= now) return { ok: false, reason: "expired" };
    return { ok: true };
  }

  #mac(payload: string): Buffer {
    return createHmac("sha256", this.#secret).update(payload).digest();
  }
}
