import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyHasher, newKey } from "./keys.ts";

describe("KeyHasher", () => {
  const secret = randomBytes(32);
  const hmac = (key: string) => createHmac("sha256", secret).update(key, "utf8").digest("hex");

  it("stores keys as an HMAC under the server secret", () => {
    const key = newKey();
    expect(new KeyHasher(secret).hash(key)).toBe(hmac(key));
    expect(new KeyHasher(randomBytes(32)).hash(key)).not.toBe(hmac(key));
  });

  it("answers a verified key's hash from memory, the same hash; other keys are hashed as before", () => {
    const hasher = new KeyHasher(secret);
    const [a, b] = [newKey(), newKey()];
    expect(hasher.lookupHash(a)).toBe(hmac(a));
    hasher.verified(a, hmac(a));
    expect(hasher.lookupHash(a)).toBe(hmac(a));
    expect(hasher.lookupHash(b)).toBe(hmac(b));
    // What it remembers is what the store holds for the key: the memory answers exactly that.
    hasher.verified(b, "f".repeat(64));
    expect(hasher.lookupHash(b)).toBe("f".repeat(64));
    expect(hasher.lookupHash(`${b}x`)).toBe(hmac(`${b}x`));
  });
});
