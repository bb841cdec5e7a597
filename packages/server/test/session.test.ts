// The dashboard's session cookie (POST/GET/DELETE /v1/session) and the static dashboard at /:
// cookie flags, cookie authentication through the same pipeline as bearer keys (audit included),
// CSRF refusals, revocation ending sessions, hostile bodies and cookies, path traversal.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type ApiOptions, type TestServer, testServer } from "./helpers.ts";

// A stand-in dashboard build (the real one is packages/dashboard's, tested in a browser there),
// with a secret beside it that path traversal must not reach.
const fixture = await mkdtemp(join(tmpdir(), "kiln-dashboard-fixture-"));
const dist = join(fixture, "dist");
await mkdir(join(dist, "assets"), { recursive: true });
await writeFile(join(fixture, "package.json"), '{ "name": "root:x:0:0" }\n');
await writeFile(
  join(dist, "index.html"),
  '<!doctype html><title>Kiln</title><script type="module" src="/assets/app-abc123.js"></script>\n',
);
await writeFile(join(dist, "assets", "app-abc123.js"), "console.log('kiln');\n");
process.env.KILN_DASHBOARD_DIR = dist;
afterAll(async () => {
  delete process.env.KILN_DASHBOARD_DIR;
  await rm(fixture, { recursive: true, force: true });
});

const t = await testServer();
const origin = new URL(t.url).origin;
/** What the dashboard's own page sends on a change. */
const SAME = { origin, "x-kiln-csrf": "1" };

async function signIn(s: TestServer, apiKey: unknown, headers: Record<string, string> = SAME) {
  return s.api("POST", "/v1/session", { key: null, body: { apiKey }, headers });
}

function cookieOf(res: { headers: Headers }): string {
  const set = res.headers.get("set-cookie") ?? "";
  return set.split(";")[0] as string;
}

/** A call authenticated by the cookie alone (no Authorization). */
function withCookie(cookie: string, method: string, path: string, o: ApiOptions = {}) {
  return t.api(method, path, { ...o, key: null, headers: { cookie, ...o.headers } });
}

describe("POST /v1/session", () => {
  it("trades a key for an HttpOnly, SameSite=Strict cookie that does not hold the key", async () => {
    const res = await signIn(t, t.key);
    expect(res.status).toBe(200);
    const set = res.headers.get("set-cookie") ?? "";
    expect(set).toMatch(/^kiln_session=ks1\./);
    expect(set).toContain("HttpOnly");
    expect(set).toContain("SameSite=Strict");
    expect(set).toContain("Path=/");
    expect(set).not.toContain("Secure"); // plain http on loopback
    expect(set).not.toContain(t.key);
    expect(set).not.toContain(t.key.slice(5, 25));
    expect(res.text).not.toContain(t.key);
    expect(res.body).toMatchObject({ org: { id: "default" }, scopes: ["*"], via: "session" });
    expect(res.body.key.id).toMatch(/^key_/);
  });

  it("refuses a wrong key with 401, and bad bodies with 400", async () => {
    expect((await signIn(t, "kiln_not-a-real-key-000000000000")).status).toBe(401);
    expect((await signIn(t, "kiln_not-a-real-key-000000000000")).body.error.code).toBe("UNAUTHORIZED");
    expect((await signIn(t, 12345)).status).toBe(400);
    expect((await signIn(t, { $ne: null })).status).toBe(400);
    expect((await signIn(t, "x".repeat(100_000))).status).toBe(400);
    const missing = await t.api("POST", "/v1/session", { key: null, body: {}, headers: SAME });
    expect(missing.status).toBe(400);
    expect(missing.body.error.field).toBe("apiKey");
    const extra = await t.api("POST", "/v1/session", {
      key: null,
      body: { apiKey: t.key, admin: true },
      headers: SAME,
    });
    expect(extra.status).toBe(400);
    const notJson = await t.api("POST", "/v1/session", { key: null, raw: "apiKey=x", headers: SAME });
    expect(notJson.status).toBe(400);
    const huge = await t.api("POST", "/v1/session", {
      key: null,
      raw: JSON.stringify({ apiKey: "k".repeat(17 * 1024 * 1024) }),
      headers: { ...SAME, "content-type": "application/json" },
    });
    expect(huge.status).toBe(413);
    expect(huge.headers.get("set-cookie")).toBeNull();
  });

  it("refuses a sign-in from another site (CSRF)", async () => {
    const foreign = await signIn(t, t.key, { origin: "https://evil.example", "x-kiln-csrf": "1" });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error).toMatchObject({ code: "FORBIDDEN" });
    expect(foreign.body.error.message).toContain("CSRF");
    expect(foreign.headers.get("set-cookie")).toBeNull();
    expect((await signIn(t, t.key, { origin })).status).toBe(403); // no x-kiln-csrf
  });
});

describe("a session cookie", () => {
  it("authenticates every /v1 route like the key it was made with, and GET /v1/session says who", async () => {
    const cookie = cookieOf(await signIn(t, t.key));
    const list = await withCookie(cookie, "GET", "/v1/sandboxes");
    expect(list.status).toBe(200);
    expect(Array.isArray(list.body.sandboxes)).toBe(true);
    const me = await withCookie(cookie, "GET", "/v1/session");
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ org: { id: "default", name: "default" }, scopes: ["*"], via: "session" });
    const bearer = await t.api("GET", "/v1/session");
    expect(bearer.body).toMatchObject({ via: "bearer", key: { id: me.body.key.id } });
    expect((await t.api("GET", "/v1/session", { key: null })).status).toBe(401);
  });

  it("changes things only from the same origin with x-kiln-csrf, audited as the key", async () => {
    const cookie = cookieOf(await signIn(t, t.key));
    const me = (await withCookie(cookie, "GET", "/v1/session")).body;
    const body = { name: "made-by-cookie", scopes: ["sandboxes:read"] };
    const noHeader = await withCookie(cookie, "POST", "/v1/keys", { body, headers: { origin } });
    expect(noHeader.status).toBe(403);
    expect(noHeader.body.error.code).toBe("FORBIDDEN");
    expect(noHeader.body.error.message).toMatch(/CSRF.*x-kiln-csrf/);
    const crossSite = await withCookie(cookie, "POST", "/v1/keys", {
      body,
      headers: { origin: "http://evil.example", "x-kiln-csrf": "1" },
    });
    expect(crossSite.status).toBe(403);
    const noOrigin = await withCookie(cookie, "POST", "/v1/keys", {
      body,
      headers: { "x-kiln-csrf": "1", "sec-fetch-site": "cross-site" },
    });
    expect(noOrigin.status).toBe(403);
    const deleteCross = await withCookie(cookie, "DELETE", "/v1/sandboxes/anything", {
      headers: { origin: "http://evil.example", "x-kiln-csrf": "1" },
    });
    expect(deleteCross.status).toBe(403);
    const ok = await withCookie(cookie, "POST", "/v1/keys", { body, headers: SAME });
    expect(ok.status).toBe(201);
    const viaFetchMetadata = await withCookie(cookie, "POST", "/v1/keys", {
      body,
      headers: { "sec-fetch-site": "same-origin", "x-kiln-csrf": "1" },
    });
    expect(viaFetchMetadata.status).toBe(201);
    const audit = await t.api("GET", "/v1/audit?limit=50");
    const created = audit.body.events.filter((e: { action: string }) => e.action === "key.create");
    expect(created.at(-1)).toMatchObject({ keyId: me.key.id, outcome: "ok", target: viaFetchMetadata.body.id });
    expect(audit.body.events.some((e: { action: string }) => e.action === "session.create")).toBe(true);
    // A bearer key needs none of this.
    expect((await t.api("POST", "/v1/keys", { body })).status).toBe(201);
  });

  it("opens a WebSocket only from the same origin", async () => {
    const cookie = cookieOf(await signIn(t, t.key));
    const upgrade = (o: string) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${t.url.replace("http", "ws")}/v1/sandboxes/nope/pty/nope`, {
          headers: { cookie, origin: o },
        });
        ws.on("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("open", () => {
          resolve(101);
          ws.close();
        });
        ws.on("error", reject);
      });
    expect(await upgrade("http://evil.example")).toBe(403);
    // Same origin passes the CSRF check and reaches the route: that sandbox does not exist.
    expect(await upgrade(origin)).toBe(404);
  });

  it("is refused when garbage, tampered, or from another server", async () => {
    const good = cookieOf(await signIn(t, t.key)).slice("kiln_session=".length);
    const other = await testServer();
    const foreign = cookieOf(await signIn(other, other.key)).slice("kiln_session=".length);
    const parts = good.split(".");
    const tampered = [parts[0], "key_someoneelse", ...parts.slice(2)].join(".");
    const later = [parts[0], parts[1], String(Number(parts[2]) + 86_400 * 365), ...parts.slice(3)].join(".");
    for (const value of [
      "garbage",
      "",
      "ks1....",
      "ks1.a.b.c.d",
      `${good}x`,
      tampered,
      later,
      foreign,
      "%00%ff",
      "x".repeat(10_000),
    ]) {
      const res = await withCookie(`kiln_session=${value}`, "GET", "/v1/sandboxes");
      expect(res.status, value.slice(0, 40)).toBe(401);
      expect(res.body.error.code).toBe("UNAUTHORIZED");
    }
  });

  it("ends at once when its key is revoked", async () => {
    const made = await t.api("POST", "/v1/keys", { body: { name: "short-lived", scopes: ["sandboxes:read"] } });
    const cookie = cookieOf(await signIn(t, made.body.key));
    expect((await withCookie(cookie, "GET", "/v1/sandboxes")).status).toBe(200);
    expect((await t.api("DELETE", `/v1/keys/${made.body.id}`)).status).toBe(204);
    const after = await withCookie(cookie, "GET", "/v1/session");
    expect(after.status).toBe(401);
    expect(after.body.error.message).toContain("revoked");
    expect((await withCookie(cookie, "GET", "/v1/sandboxes")).status).toBe(401);
    expect((await signIn(t, made.body.key)).status).toBe(401);
  });

  it("ends on sign-out: the cookie is cleared and the old value no longer works", async () => {
    const cookie = cookieOf(await signIn(t, t.key));
    const out = await withCookie(cookie, "DELETE", "/v1/session", { headers: SAME });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/^kiln_session=;.*Max-Age=0/);
    expect((await withCookie(cookie, "GET", "/v1/sandboxes")).status).toBe(401);
    // Signing out without a session still clears the cookie.
    expect((await t.api("DELETE", "/v1/session", { key: null })).status).toBe(204);
  });

  it("is Secure, and trusts that origin, when KILN_PUBLIC_URL is https", async () => {
    const s = await testServer({ publicUrl: "https://kiln.example.test" });
    const res = await signIn(s, s.key, { origin: "https://kiln.example.test", "x-kiln-csrf": "1" });
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toContain("Secure");
  });
});

describe("the dashboard at /", () => {
  it("answers pages with a strict Content-Security-Policy and the SPA's index for its own paths", async () => {
    for (const path of ["/", "/sandboxes", "/sandboxes/abc/terminal"]) {
      const res = await fetch(t.url + path, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await res.text()).toContain("<title>Kiln</title>");
    }
  });

  it("answers an unknown path with the API's 404 unless a browser asks for a page", async () => {
    const res = await fetch(`${t.url}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
  });

  it("never answers /v1, /mcp, /preview or /docs paths with the dashboard", async () => {
    const api = await fetch(`${t.url}/v1/nothing-here`);
    expect(api.status).toBe(401);
    for (const path of ["/preview/x/1/", "/docs/nothing-here", "/mcp"]) {
      const res = await fetch(t.url + path, { headers: { accept: "text/html" } });
      expect(await res.text(), path).not.toContain("<title>Kiln</title>");
    }
  });

  it("refuses path traversal and answers a missing asset with 404", async () => {
    expect((await fetch(`${t.url}/assets/nope.js`)).status).toBe(404);
    for (const path of [
      "/..%2f..%2fetc/passwd",
      "/..%2f..%2fetc%2fpasswd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/assets/..%2f..%2fpackage.json",
      "/..%2fpackage.json",
      "/..%5c..%5cpackage.json",
      "/%00",
      "/assets/nope.js",
      "/%E0%A4%A",
    ]) {
      const res = await fetch(t.url + path, { headers: { accept: "text/html" } });
      const text = await res.text();
      // 404, or (where the URL parser already folded the dots away) the dashboard's own index.
      if (res.status === 200) expect(text, path).toContain("<title>Kiln</title>");
      else expect(res.status, path).toBe(404);
      expect(text).not.toContain("root:");
      expect(text).not.toContain('"name"');
    }
  });

  it("serves hashed assets with a long cache and the right type", async () => {
    const html = await (await fetch(`${t.url}/`)).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const res = await fetch(t.url + script);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/javascript");
    expect(res.headers.get("cache-control")).toContain("immutable");
  });

  it("says how to build the dashboard when it is not built", async () => {
    process.env.KILN_DASHBOARD_DIR = "/nonexistent/kiln-dashboard";
    try {
      const s = await testServer();
      const res = await fetch(`${s.url}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("pnpm --filter @kiln/dashboard build");
    } finally {
      process.env.KILN_DASHBOARD_DIR = dist;
    }
  });
});

describe("failed sign-ins", () => {
  it("count toward the per-address limit (429 with Retry-After)", async () => {
    let last = 0;
    let retryAfter: string | null = null;
    for (let i = 0; i < 35 && last !== 429; i++) {
      const res = await signIn(t, `kiln_wrong-key-number-${i}-0000000000`);
      last = res.status;
      retryAfter = res.headers.get("retry-after");
    }
    expect(last).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThan(0);
  });
});
