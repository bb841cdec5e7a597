import { describe, expect, it } from "vitest";
import { TICKET_TTL_MS, Tickets } from "./tickets.ts";

const principal = { orgId: "default", keyId: "key_1", scopes: ["*"] };

describe("tickets", () => {
  it("work once", () => {
    const tickets = new Tickets();
    const { ticket } = tickets.issue(principal);
    expect(tickets.redeem(ticket)).toEqual(principal);
    expect(tickets.redeem(ticket)).toBeUndefined();
    expect(tickets.redeem("kt_forged")).toBeUndefined();
  });

  it("expire after 60 s", () => {
    let now = 1_000_000;
    const tickets = new Tickets(() => now);
    const { ticket, expiresAt } = tickets.issue(principal);
    expect(Date.parse(expiresAt)).toBe(now + TICKET_TTL_MS);
    now += TICKET_TTL_MS;
    expect(tickets.redeem(ticket)).toBeUndefined();
  });
});
