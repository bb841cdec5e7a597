/**
 * Stable sandbox names for conversations: the same conversation id always maps to the same
 * sandbox, in any process, and two different ids never share one.
 */
import { createHash, randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../errors.ts";

const VALID_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MAX_NAME_LENGTH = 63;
/** 16 hex characters = 64 bits of the id's hash: a collision needs billions of conversations. */
const HASH_CHARS = 16;

/** Throws unless `prefix` can start a sandbox name and leaves room for an id. */
export function checkNamePrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,29}$/.test(prefix)) {
    throw new InvalidArgumentError(
      "namePrefix",
      `must be 1-30 characters of letters, digits, '_', '.', '-', starting with a letter or digit; got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

/**
 * `prefix + id` when that is already a valid sandbox name; otherwise a readable slug of the id
 * plus a hash of the whole id (so "a b" and "a_b" differ, and long ids fit in 63 characters).
 */
export function sandboxNameFor(prefix: string, id: string): string {
  if (typeof id !== "string" || id.length === 0) {
    throw new InvalidArgumentError("conversation id", "must be a non-empty string");
  }
  const plain = `${prefix}${id}`;
  if (VALID_NAME.test(plain)) return plain;
  const hash = createHash("sha256").update(id).digest("hex").slice(0, HASH_CHARS);
  const room = MAX_NAME_LENGTH - prefix.length - HASH_CHARS - 1;
  const slug = id
    .replace(/[^a-zA-Z0-9_.-]+/g, "_")
    .slice(0, Math.max(room, 0))
    .replace(/^[_.-]+|[_.-]+$/g, "");
  return slug ? `${prefix}${slug}-${hash}` : `${prefix}${hash}`;
}

/** A fresh name for a sandbox that belongs to one tool set, not to a conversation. */
export function privateSandboxName(prefix: string): string {
  return `${prefix}own-${randomBytes(6).toString("hex")}`;
}
