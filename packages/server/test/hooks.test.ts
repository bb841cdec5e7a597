// The admission hook and webhooks, end to end: receivers are real HTTP servers on loopback
// (hence KILN_ALLOW_PRIVATE_HOOKS), the server is real, the engine is real.
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { testServer } from "./helpers.ts";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

/** A loopback HTTP server answering with `answer`; records what it received. */
async function receiver(answer: (body: string, n: number) => { status: number; json?: unknown } | "hang") {
  const received: Received[] = [];
  const hanging: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body, at: Date.now() });
      const a = answer(body, received.length);
      if (a === "hang") {
        hanging.push(() => res.destroy());
        return;
      }
      res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.json ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const h of hanging) h();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  afterAll(close);
  return { url, received };
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The admission hook: denies exec of commands mentioning "forbidden", hangs on code, patches creates.
const admission = await receiver((body) => {
  const b = JSON.parse(body) as { action: string; request: { command?: string } };
  if (b.action === "sandbox.code") return "hang";
  if (b.action === "sandbox.exec" && String(b.request.command).includes("forbidden"))
    return { status: 200, json: { allow: false, reason: "no forbidden commands here" } };
  if (b.action === "sandbox.create")
    return {
      status: 200,
      json: {
        allow: true,
        patch: { labels: { ...((b.request as { labels?: object }).labels ?? {}), admitted: "yes" } },
      },
    };
  return { status: 200, json: { allow: true } };
});

const t = await testServer({
  admissionUrl: admission.url,
  admissionTimeoutMs: 500,
  allowPrivateHooks: true,
  webhooks: { timeoutMs: 400, backoffMs: 100, maxAttempts: 3 },
});

describe("the admission hook", () => {
  it("is asked before create (and may patch it), exec and code; deny is 403 with the reason; a hang denies", async () => {
    const box = await t.create({ name: "admitted" });
    expect(box.labels).toMatchObject({ admitted: "yes" });
    const asked = admission.received.map((r) => JSON.parse(r.body));
    expect(asked[0]).toMatchObject({ action: "sandbox.create", orgId: "default", request: { name: "admitted" } });
    expect(asked[0].keyId).toMatch(/^key_/);

    const ok = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo fine" } });
    expect(ok.body.stdout).toBe("fine\n");
    expect(JSON.parse(admission.received.at(-1)?.body as string)).toMatchObject({
      action: "sandbox.exec",
      sandboxId: box.id,
      request: { command: "echo fine" },
    });

    const denied = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, {
      body: { command: "echo forbidden > /workspace/x" },
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toEqual({
      code: "FORBIDDEN",
      message: "Denied by the admission hook: no forbidden commands here",
    });
    // It did not run.
    expect((await t.api("GET", `/v1/sandboxes/${box.id}/files/stat?path=/workspace/x`)).status).toBe(404);

    const started = Date.now();
    const hung = await t.api("POST", `/v1/sandboxes/${box.id}/code`, { body: { code: "1+1" } });
    expect(hung.status).toBe(403);
    expect(hung.body.error.message).toMatch(/did not answer within 500 ms/);
    expect(Date.now() - started).toBeLessThan(3_000);

    const events = (await t.api("GET", "/v1/audit?limit=10")).body.events;
    expect(
      events.filter((e: { outcome: string }) => e.outcome === "denied").map((e: { action: string }) => e.action),
    ).toEqual(["sandbox.exec", "sandbox.code"]);
  });
});

describe("webhooks", () => {
  it("deliver signed Standard Webhooks messages of the organisation's own events, without blocking the call", async () => {
    const hook = await receiver(() => ({ status: 204 }));
    const made = await t.api("POST", "/v1/webhooks", {
      body: { url: hook.url, events: ["sandbox.created", "sandbox.stopped", "sandbox.deleted"] },
    });
    expect(made.status).toBe(201);
    expect(made.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const listed = await t.api("GET", "/v1/webhooks");
    expect(listed.text).not.toContain(made.body.secret);

    const box = await t.create();
    await t.api("POST", `/v1/sandboxes/${box.id}/stop`);
    await t.api("DELETE", `/v1/sandboxes/${box.id}`);
    await until(() => (hook.received.length >= 3 ? true : undefined));
    const types = hook.received.map((r) => JSON.parse(r.body).type);
    expect(types).toEqual(["sandbox.created", "sandbox.stopped", "sandbox.deleted"]);
    for (const r of hook.received) {
      const id = r.headers["webhook-id"] as string;
      const ts = r.headers["webhook-timestamp"] as string;
      expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(30);
      const key = Buffer.from(made.body.secret.slice("whsec_".length), "base64");
      const expected = createHmac("sha256", key).update(`${id}.${ts}.${r.body}`).digest("base64");
      expect(r.headers["webhook-signature"]).toBe(`v1,${expected}`);
      const body = JSON.parse(r.body);
      expect(body.data.id).toBe(box.id);
      expect(typeof body.timestamp).toBe("string");
    }
    const deliveries = await t.api("GET", `/v1/webhooks/${made.body.id}/deliveries`);
    expect(deliveries.body.deliveries.map((d: { status: string }) => d.status)).toEqual([
      "delivered",
      "delivered",
      "delivered",
    ]);
    expect((await t.api("DELETE", `/v1/webhooks/${made.body.id}`)).status).toBe(204);
    expect((await t.api("GET", `/v1/webhooks/${made.body.id}/deliveries`)).status).toBe(404);
  });

  it("retry a receiver answering 500 with backoff; a hanging receiver does not slow the API", async () => {
    const flaky = await receiver((_b, n) => ({ status: n < 3 ? 500 : 200 }));
    const hangs = await receiver(() => "hang");
    const f = (await t.api("POST", "/v1/webhooks", { body: { url: flaky.url, events: ["sandbox.created"] } })).body;
    const h = (await t.api("POST", "/v1/webhooks", { body: { url: hangs.url, events: ["sandbox.created"] } })).body;
    const started = Date.now();
    await t.create();
    // The create answered at its usual speed (the hanging receiver holds each attempt 400 ms).
    expect(Date.now() - started).toBeLessThan(30_000);
    const flakyDone = await until(async () => {
      const d = (await t.api("GET", `/v1/webhooks/${f.id}/deliveries`)).body.deliveries[0];
      return d?.status === "delivered" ? d : undefined;
    });
    expect(flakyDone).toMatchObject({ event: "sandbox.created", status: "delivered", attempts: 3 });
    expect(flaky.received.length).toBe(3);
    // Exponential backoff: the second gap is at least the first.
    const [a, b, c] = flaky.received.map((r) => r.at) as [number, number, number];
    expect(b - a).toBeGreaterThanOrEqual(90);
    expect(c - b).toBeGreaterThanOrEqual(190);
    // Each retry is the same message (same webhook-id).
    expect(new Set(flaky.received.map((r) => r.headers["webhook-id"])).size).toBe(1);

    const hungDone = await until(async () => {
      const d = (await t.api("GET", `/v1/webhooks/${h.id}/deliveries`)).body.deliveries[0];
      return d?.status === "failed" ? d : undefined;
    });
    expect(hungDone).toMatchObject({ status: "failed", attempts: 3, lastError: "no answer within 400 ms" });
    // Meanwhile the API answered promptly.
    const t0 = Date.now();
    expect((await t.api("GET", "/v1/sandboxes")).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("an organisation's webhook sees only its own events", async () => {
    const hook = await receiver(() => ({ status: 200 }));
    const orgRes = await t.api("POST", "/v1/orgs", { body: { name: `wh-${process.pid}` } });
    const key = (await t.api("POST", "/v1/keys", { body: { name: "k", scopes: ["*"], orgId: orgRes.body.id } })).body
      .key;
    const made = await t.api("POST", "/v1/webhooks", { body: { url: hook.url, events: ["sandbox.created"] }, key });
    expect(made.status).toBe(201);
    await t.create(); // the default organisation's
    const mine = await t.create({}, key);
    await until(() => (hook.received.length >= 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    expect(hook.received.map((r) => JSON.parse(r.body).data.id)).toEqual([mine.id]);
  });
});
