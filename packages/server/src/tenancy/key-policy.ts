/**
 * A key never makes (or revokes) a key with more power than itself: scopes a subset of its own
 * (with `*` expanded in each key's organisation), its sandbox restriction kept, an expiry no later
 * than its own. `orgs:admin` belongs to keys of the default organisation only.
 */
import { HttpError } from "../errors.ts";
import { DEFAULT_ORG_ID, effectiveScopes, type Principal } from "../pipeline/principal.ts";

export interface Wanted {
  orgId: string;
  scopes: string[];
  sandboxId?: string;
  expiresAt?: string;
}

function missing(caller: Principal, orgId: string, scopes: readonly string[]): string | undefined {
  const have = effectiveScopes(caller.scopes, caller.orgId);
  for (const s of effectiveScopes(scopes, orgId)) if (!have.has(s)) return s;
  return undefined;
}

/** What the new key gets, or throws 400/403. */
export function checkMint(caller: Principal, wanted: Wanted): Omit<Wanted, "orgId"> {
  if (wanted.scopes.includes("orgs:admin") && wanted.orgId !== DEFAULT_ORG_ID) {
    throw new HttpError("INVALID_ARGUMENT", "scopes: orgs:admin can be held only by keys of the default organisation", {
      field: "scopes",
    });
  }
  const lacking = missing(caller, wanted.orgId, wanted.scopes);
  if (lacking !== undefined) {
    throw new HttpError(
      "FORBIDDEN",
      `A key can only make keys with a subset of its own scopes: this key lacks "${lacking}"`,
    );
  }
  let sandboxId = wanted.sandboxId;
  if (caller.sandboxId !== undefined) {
    if (sandboxId !== undefined && sandboxId !== caller.sandboxId) {
      throw new HttpError("FORBIDDEN", "This key is restricted to one sandbox: so is every key it makes");
    }
    sandboxId = caller.sandboxId;
  }
  let expiresAt = wanted.expiresAt;
  if (expiresAt !== undefined && Date.parse(expiresAt) <= Date.now()) {
    throw new HttpError("INVALID_ARGUMENT", "expiresAt: must be in the future", { field: "expiresAt" });
  }
  if (caller.expiresAt !== undefined) {
    if (expiresAt !== undefined && Date.parse(expiresAt) > Date.parse(caller.expiresAt)) {
      throw new HttpError(
        "FORBIDDEN",
        `A key can only make keys that expire no later than itself (${caller.expiresAt})`,
      );
    }
    expiresAt ??= caller.expiresAt;
  }
  return {
    scopes: [...new Set(wanted.scopes)],
    ...(sandboxId === undefined ? {} : { sandboxId }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

/** The caller may act on (revoke) `key` only when it holds every scope `key` holds. */
export function checkPower(caller: Principal, key: { orgId: string; scopes: string[] }, verb: string): void {
  const lacking = missing(caller, key.orgId, key.scopes);
  if (lacking !== undefined) {
    throw new HttpError("FORBIDDEN", `A key cannot ${verb} a key with more power: this key lacks "${lacking}"`);
  }
}
