// POST/GET/DELETE /v1/images through real HTTP against the real engine.
import { describe, expect, it } from "vitest";
import { addOrgKey, sseEvents, testServer } from "./helpers.ts";

const t = await testServer();
const name = `srv-img-${process.pid}`;

describe("images", () => {
  it("builds with SSE progress then done, lists it, creates a sandbox from it by name, and deletes it", async () => {
    const res = await fetch(`${t.url}/v1/images`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ name, run: ["echo served > /etc/kiln-served"], env: { FROM_SPEC: "1" } }),
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await sseEvents(res);
    expect(events.length).toBeGreaterThan(1);
    expect(events.slice(0, -1).every((e) => e.type === "progress" && typeof e.message === "string")).toBe(true);
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", name, tag: expect.stringMatching(new RegExp(`^kiln-image-${name}:`)) });

    // JSON: the unchanged spec answers at once with the same tag.
    const again = await t.api("POST", "/v1/images", {
      body: { name, run: ["echo served > /etc/kiln-served"], env: { FROM_SPEC: "1" } },
    });
    expect(again.status).toBe(201);
    expect(again.body).toEqual({ name, tag: done?.tag });

    const listed = await t.api("GET", "/v1/images");
    expect(listed.body.images).toContainEqual(expect.objectContaining({ name, tag: done?.tag }));

    const sandbox = await t.create({ image: name });
    const exec = await t.api("POST", `/v1/sandboxes/${sandbox.id}/exec`, {
      body: { command: "cat /etc/kiln-served; echo $FROM_SPEC" },
    });
    expect(exec.body.stdout).toBe("served\n1\n");
    expect((await t.api("DELETE", `/v1/images/${name}`)).status).toBe(409);
    await t.api("DELETE", `/v1/sandboxes/${sandbox.id}`);
    expect((await t.api("DELETE", `/v1/images/${name}`)).status).toBe(204);
    expect((await t.api("DELETE", `/v1/images/${name}`)).status).toBe(404);
  }, 300_000);

  it("a failing step is 422 IMAGE_BUILD_FAILED with its output; a Dockerfile spec is refused; scopes apply", async () => {
    const failed = await t.api("POST", "/v1/images", {
      body: { name: `${name}-bad`, run: ["echo srv-marker; exit 4"] },
    });
    expect(failed.status).toBe(422);
    expect(failed.body.error.code).toBe("IMAGE_BUILD_FAILED");
    expect(failed.body.error.message).toContain("srv-marker");

    const dockerfile = await t.api("POST", "/v1/images", {
      body: { name: `${name}-df`, dockerfile: "/etc/passwd", context: "/" },
    });
    expect(dockerfile.status).toBe(400);

    const reader = await addOrgKey(t.dataDir, "default", { scopes: ["sandboxes:read"] });
    expect((await t.api("GET", "/v1/images", { key: reader })).status).toBe(200);
    expect((await t.api("POST", "/v1/images", { key: reader, body: { name: `${name}-x` } })).status).toBe(403);
    expect((await t.api("DELETE", `/v1/images/${name}-x`, { key: reader })).status).toBe(403);
    // Images are shared by every organisation: only the server's administrators change them.
    const tenant = await addOrgKey(t.dataDir, `img${process.pid}`, { scopes: ["*"] });
    expect((await t.api("GET", "/v1/images", { key: tenant })).status).toBe(200);
    expect((await t.api("POST", "/v1/images", { key: tenant, body: { name: `${name}-y` } })).status).toBe(403);
    expect((await t.api("DELETE", `/v1/images/${name}`, { key: tenant })).status).toBe(403);
  }, 300_000);
});
