// POST /v1/sandboxes answers with what create() knew (no engine inspect, which right after a
// pool claim waits behind the claim's file write): it must be exactly what GET answers.
import { Kiln } from "@kiln/core";
import { describe, expect, inject, it } from "vitest";
import { testServer } from "./helpers.ts";

describe("the create answer", () => {
  it.each([
    ["a cold create", 0],
    ["a pool claim", 1],
  ])("is the sandbox's info as GET reports it (%s)", async (_what, size) => {
    const kiln = new Kiln({ image: inject("runtimeImage"), ...(size > 0 ? { pool: { size } } : {}) });
    try {
      const t = await testServer({ kiln });
      await kiln.pool?.filled();
      const created = await t.create({
        name: `answer-${size}-${process.pid}`,
        labels: { role: "answer" },
        resources: { memoryMb: 1024 },
        env: { A: "1" },
      });
      const got = await t.api("GET", `/v1/sandboxes/${String(created.id)}`);
      expect(got.status).toBe(200);
      expect(created).toEqual(got.body);
      expect(created).toMatchObject({ state: "running", language: "python", network: "none" });
      expect(created.image).toEqual(expect.any(String));
      // The first call after the create finds the sandbox (the handle the create cached).
      const run = await t.api("POST", `/v1/sandboxes/${String(created.id)}/exec`, { body: { command: "echo $A" } });
      expect(run.body.stdout).toBe("1\n");
      expect((await t.api("DELETE", `/v1/sandboxes/${String(created.id)}`)).status).toBe(204);
    } finally {
      await kiln.close();
    }
  });
});
