/**
 * Tickets: a browser cannot set `Authorization` on a WebSocket, so it first asks
 * `POST /v1/tickets` (with its key) for a ticket and opens the socket with `?ticket=`. A ticket
 * works once, for 60 s, on a WebSocket upgrade only, and carries the principal of the key that
 * made it (its organisation, scopes and sandbox restriction; a key revoked meanwhile fails).
 * Tickets live in this server process's memory: a restart forgets them, which is fine at 60 s.
 */
import { randomBytes } from "node:crypto";
import type { Principal } from "./principal.ts";

export const TICKET_TTL_MS = 60_000;
/** Unredeemed tickets kept at most (the oldest are dropped first); a client needs one per socket. */
const MAX_TICKETS = 100_000;

export class Tickets {
  readonly #tickets = new Map<string, { principal: Principal; expiresAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  issue(principal: Principal): { ticket: string; expiresAt: string } {
    this.#sweep();
    const ticket = `kt_${randomBytes(24).toString("base64url")}`;
    const expiresAt = this.#now() + TICKET_TTL_MS;
    this.#tickets.set(ticket, { principal, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The ticket's principal if it is known and unexpired; it is used up either way. */
  redeem(ticket: string): Principal | undefined {
    const entry = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    return entry && entry.expiresAt > this.#now() ? entry.principal : undefined;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [ticket, entry] of this.#tickets) {
      if (entry.expiresAt <= now || this.#tickets.size >= MAX_TICKETS) this.#tickets.delete(ticket);
      else break; // insertion order is expiry order
    }
  }
}
