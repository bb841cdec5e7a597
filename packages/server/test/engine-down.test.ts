// The Docker engine going away and coming back, without touching the real dockerd: the server's
// Kiln talks to the engine through a unix-socket proxy this test stops and restarts.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineProxy } from "@kiln/core/test/engine-proxy";
import { afterAll, describe, expect, it } from "vitest";
import { testServer } from "./helpers.ts";

const dir = await mkdtemp(join(tmpdir(), "kiln-proxy-"));
const proxy = new EngineProxy(join(dir, "docker.sock"));
await proxy.start();
// After hooks run in reverse order: this one runs last, after the helper's cleanup...
afterAll(async () => {
  await proxy.stop();
  await rm(dir, { recursive: true, force: true });
});
const t = await testServer({ kilnOptions: { docker: { socketPath: proxy.path } } });
// ...and this one first, so that cleanup reaches the engine even if a test left the proxy down.
afterAll(() => proxy.start().catch(() => {}));

describe("the engine down", () => {
  it("answers 503 ENGINE_UNAVAILABLE with a clear message, and recovers when the engine is back", async () => {
    const box = await t.create();
    expect((await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo up" } })).body.stdout).toBe(
      "up\n",
    );

    await proxy.stop();
    const list = await t.api("GET", "/v1/sandboxes");
    expect(list.status).toBe(503);
    expect(list.body.error.code).toBe("ENGINE_UNAVAILABLE");
    expect(list.body.error.message).toMatch(/Docker engine/);
    const create = await t.api("POST", "/v1/sandboxes", { body: {} });
    expect(create.status).toBe(503);
    const exec = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo down" } });
    expect(exec.status).toBe(503);
    expect(["ENGINE_UNAVAILABLE", "AGENT_UNAVAILABLE"]).toContain(exec.body.error.code);
    const health = await t.api("GET", "/healthz", { key: null });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "ok", engine: "unavailable" });

    await proxy.start();
    expect((await t.api("GET", "/healthz", { key: null })).body.engine).toBe("ok");
    expect((await t.api("GET", "/v1/sandboxes")).status).toBe(200);
    const again = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo back" } });
    expect(again.status, again.text).toBe(200);
    expect(again.body.stdout).toBe("back\n");
  });
});
