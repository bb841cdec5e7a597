import { createHash, randomBytes } from "node:crypto";
import { InvalidArgumentError } from "@kiln/core";

/** Kiln's rule for sandbox names (core validates the same). */
const VALID_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MAX_NAME_LENGTH = 63;
/** 16 hex characters = 64 bits of the id's hash: collisions need ~4 billion threads. */
const HASH_CHARS = 16;

/**
 * The stable sandbox name of a conversation: `prefix + threadId` when that is already a valid
 * name, else a readable slug of the id plus a hash of the whole id, so two different ids never
 * share a sandbox (`"a b"` and `"a_b"` get different names) and long ids fit in 63 characters.
 */
export function sandboxNameForThread(threadId: string, prefix: string): string {
  const plain = `${prefix}${threadId}`;
  if (VALID_NAME.test(plain)) return plain;
  const hash = createHash("sha256").update(threadId).digest("hex").slice(0, HASH_CHARS);
  const room = MAX_NAME_LENGTH - prefix.length - HASH_CHARS - 1;
  const slug = threadId
    .replace(/[^a-zA-Z0-9_.-]+/g, "_")
    .slice(0, Math.max(room, 0))
    .replace(/^[_.-]+|[_.-]+$/g, "");
  return slug ? `${prefix}${slug}-${hash}` : `${prefix}${hash}`;
}

/** A fresh name for the sandbox of a tool set used outside any thread. */
export function sandboxNameForToolSet(prefix: string): string {
  return `${prefix}toolset-${randomBytes(6).toString("hex")}`;
}

/** Throws when a prefix could never produce a valid sandbox name. */
export function checkNamePrefix(prefix: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,29}$/.test(prefix)) {
    throw new InvalidArgumentError(
      "namePrefix",
      `must be 1-30 characters of letters, digits, '_', '.', '-', starting with a letter or digit; got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}
