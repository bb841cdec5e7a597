import { describe, expect, it } from "vitest";
import { checkMint, checkPower } from "./key-policy.ts";

const caller = (over = {}) => ({ orgId: "default", keyId: "key_a", scopes: ["keys:write", "sandboxes:read"], ...over });

describe("a key never makes a stronger key", () => {
  it("scopes: a subset of its own, * expanded per organisation", () => {
    expect(() => checkMint(caller(), { orgId: "default", scopes: ["*"] })).toThrow(/lacks/);
    expect(checkMint(caller(), { orgId: "default", scopes: ["sandboxes:read", "sandboxes:read"] }).scopes).toEqual([
      "sandboxes:read",
    ]);
    const star = caller({ scopes: ["*"] });
    expect(() => checkMint(star, { orgId: "o1", scopes: ["orgs:admin"] })).toThrow(/default organisation/);
    expect(checkMint(star, { orgId: "o1", scopes: ["*"] }).scopes).toEqual(["*"]);
    // A non-default `*` key has no orgs:admin, so it cannot make a default `*` key.
    expect(() => checkMint(caller({ orgId: "o1", scopes: ["*"] }), { orgId: "default", scopes: ["*"] })).toThrow(
      /orgs:admin/,
    );
  });

  it("keeps the sandbox restriction and an expiry no later than its own", () => {
    const restricted = caller({ sandboxId: "abc", expiresAt: "2099-01-01T00:00:00.000Z" });
    expect(checkMint(restricted, { orgId: "default", scopes: [] })).toEqual({
      scopes: [],
      sandboxId: "abc",
      expiresAt: "2099-01-01T00:00:00.000Z",
    });
    expect(() => checkMint(restricted, { orgId: "default", scopes: [], sandboxId: "other" })).toThrow(/restricted/);
    expect(() =>
      checkMint(restricted, { orgId: "default", scopes: [], expiresAt: "2100-01-01T00:00:00.000Z" }),
    ).toThrow(/expire/);
  });

  it("revokes only keys it holds every scope of", () => {
    expect(() => checkPower(caller(), { orgId: "default", scopes: ["*"] }, "revoke")).toThrow(/lacks/);
    expect(() => checkPower(caller(), { orgId: "default", scopes: ["sandboxes:read"] }, "revoke")).not.toThrow();
  });
});
