/**
 * The audit log's hash chain (design/server.md): `hash` is the lowercase hex SHA-256 of
 * `prevHash` followed by the event's JSON exactly as GET /v1/audit returns it without `hash`
 * (same key order, no whitespace). The chain is per organisation; its first event's `prevHash`
 * is 64 zeros. An edited or deleted row (other than the newest) breaks it.
 */
import { hash } from "node:crypto";
import type { AuditEvent } from "../store/store.ts";

export const GENESIS_HASH = "0".repeat(64);

/** The event without `hash`, in the answer's key order (detail left out when absent). */
export function eventBody(e: Omit<AuditEvent, "hash">): Omit<AuditEvent, "hash"> {
  return {
    id: e.id,
    at: e.at,
    orgId: e.orgId,
    keyId: e.keyId,
    action: e.action,
    target: e.target,
    ...(e.detail === undefined ? {} : { detail: e.detail }),
    outcome: e.outcome,
    status: e.status,
    durationMs: e.durationMs,
    prevHash: e.prevHash,
  };
}

export function eventHash(e: Omit<AuditEvent, "hash">): string {
  // One-shot crypto.hash: no Hash object per event (the audit step runs on every changing call).
  return hash("sha256", e.prevHash + JSON.stringify(eventBody(e)), "hex");
}

export interface ChainCheck {
  ok: boolean;
  /** How many events were checked. */
  checked: number;
  /** The first event that does not fit, and why. */
  brokenAt?: { id: number; reason: string };
}

/**
 * Checks one organisation's events, in chain order. `from` is the `prevHash` the first given
 * event must have (64 zeros when the list starts at the organisation's first event).
 */
export function verifyChain(events: readonly AuditEvent[], from: string = GENESIS_HASH): ChainCheck {
  let prev = from;
  let checked = 0;
  for (const e of events) {
    if (e.prevHash !== prev) {
      return { ok: false, checked, brokenAt: { id: e.id, reason: "prevHash is not the previous event's hash" } };
    }
    const { hash, ...rest } = e;
    if (eventHash(rest) !== hash) {
      return { ok: false, checked, brokenAt: { id: e.id, reason: "hash does not match the event's contents" } };
    }
    prev = hash;
    checked++;
  }
  return { ok: true, checked };
}
