import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  AUDIT_ACTION_INFO,
  AUDIT_ACTIONS,
  isAuditAction,
  isScope,
  isWebhookEvent,
  SCOPE_INFO,
  SCOPES,
  WEBHOOK_EVENT_INFO,
  WEBHOOK_EVENT_OF_ACTION,
  WEBHOOK_EVENTS,
} from "./vocabulary.ts";

describe("@kiln/core/vocabulary", () => {
  it("keeps the wire names of docs/server.md", () => {
    expect(SCOPES).toEqual([
      "sandboxes:read",
      "sandboxes:write",
      "sandboxes:exec",
      "files:read",
      "files:write",
      "snapshots:write",
      "volumes:write",
      "keys:write",
      "webhooks:write",
      "audit:read",
      "orgs:admin",
      "*",
    ]);
    expect(WEBHOOK_EVENTS).toEqual([
      "sandbox.created",
      "sandbox.started",
      "sandbox.stopped",
      "sandbox.deleted",
      "snapshot.created",
    ]);
    // The actions server.md names "at least".
    for (const action of [
      "sandbox.create",
      "sandbox.start",
      "sandbox.stop",
      "sandbox.delete",
      "sandbox.exec",
      "sandbox.code",
      "files.write",
      "files.delete",
      "pty.open",
      "process.start",
      "snapshot.create",
      "key.create",
      "key.revoke",
      "org.quotas",
      "network.update",
    ]) {
      expect(isAuditAction(action), action).toBe(true);
    }
  });

  it("describes every name in one line, and maps each event to its action", () => {
    for (const text of [
      ...Object.values(SCOPE_INFO),
      ...Object.values(AUDIT_ACTION_INFO),
      ...Object.values(WEBHOOK_EVENT_INFO).map((e) => e.description),
    ]) {
      expect(text).toMatch(/^[A-Za-z`*][^\n]{5,119}$/);
    }
    expect(AUDIT_ACTIONS.every((a) => /^[a-z]+\.[a-z_]+$/.test(a))).toBe(true);
    expect(WEBHOOK_EVENT_OF_ACTION).toEqual({
      "sandbox.create": "sandbox.created",
      "sandbox.start": "sandbox.started",
      "sandbox.stop": "sandbox.stopped",
      "sandbox.delete": "sandbox.deleted",
      "snapshot.create": "snapshot.created",
    });
    expect([isScope("files:read"), isScope("files"), isScope("toString")]).toEqual([true, false, false]);
    expect([isWebhookEvent("sandbox.created"), isWebhookEvent("sandbox.create")]).toEqual([true, false]);
  });

  it("imports nothing, so a browser bundle can take it as it is", async () => {
    const source = await readFile(new URL("./vocabulary.ts", import.meta.url), "utf8");
    expect(source).not.toMatch(/^\s*(import|export \* from|export \{[^}]*\} from)\b/m);
    expect(source).not.toMatch(/\brequire\(|\bimport\(/);
    // Node globals (process, Buffer) fail the dashboard's typecheck, which has no Node types.
  });
});
