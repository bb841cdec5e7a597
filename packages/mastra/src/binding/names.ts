/**
 * Stable sandbox names from Mastra ids. The same thread id gives the same name in every
 * process, so `kiln.getOrCreate(name)` finds the conversation's sandbox after a restart.
 */
import { createHash, randomBytes } from "node:crypto";
import { SANDBOX_NAME_PREFIX } from "../defaults.ts";

/** Kiln's rule for names: 1-63 of [A-Za-z0-9_.-], starting with a letter or digit. */
const MAX_NAME = 63;
const HASH_CHARS = 12;

/**
 * `mastra-<id>` when the id is already a valid name fragment; otherwise the id with invalid
 * characters replaced and shortened, plus a hash of the original so distinct ids never collide.
 */
export function sandboxNameFor(id: string): string {
  const room = MAX_NAME - SANDBOX_NAME_PREFIX.length;
  if (/^[A-Za-z0-9_.-]+$/.test(id) && id.length <= room) return `${SANDBOX_NAME_PREFIX}${id}`;
  const hash = createHash("sha256").update(id).digest("hex").slice(0, HASH_CHARS);
  const readable = id
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, room - HASH_CHARS - 1);
  return `${SANDBOX_NAME_PREFIX}${readable ? `${readable}-` : ""}${hash}`;
}

/** A name no other tool set will pick: for tool calls that carry no thread or resource id. */
export function uniqueSandboxName(): string {
  return `${SANDBOX_NAME_PREFIX}tools-${randomBytes(6).toString("hex")}`;
}
