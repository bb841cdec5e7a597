// The site built from this checkout (guides, TypeDoc, the HTTP reference) and served at /docs by
// a real server on loopback: pages, content types, the live HTTP reference against the live
// OpenAPI document, the TypeScript reference's pages, traversal and missing pages. The build
// itself checks every internal link, so a guide linking to a page or heading that went away
// fails here (beforeAll throws, naming the link).
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { type RunningServer, startServer } from "@kiln/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BuildResult, buildSite, REPO_ROOT } from "../src/build.ts";
import { readGuides } from "../src/guides.ts";
import { escapeHtml } from "../src/layout.ts";

let dir: string;
let site: BuildResult;
let server: RunningServer;
let kiln: Kiln;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-docs-site-test-"));
  site = await buildSite({ out: join(dir, "site"), log: (l) => logs.push(l) });
  kiln = new Kiln();
  server = await startServer({ port: 0, dataDir: join(dir, "data"), kiln, docsDir: site.out, log: () => {} });
});

afterAll(async () => {
  await server?.close();
  await kiln?.close();
  await rm(dir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`${server.url}${path}`, { redirect: "manual" });

/** A request with the path sent byte for byte (fetch would normalise `..` and backslashes away). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on("error", reject)
      .end();
  });
}

/** Every operation the HTTP reference page shows, as "METHOD /path". */
function operationsIn(html: string): string[] {
  return [...html.matchAll(/<section class="op" id="[^"]*" data-method="([a-z]+)" data-path="([^"]+)"/g)].map(
    (m) => `${(m[1] as string).toUpperCase()} ${(m[2] as string).replace(/&amp;/g, "&")}`,
  );
}

describe("the built site", () => {
  it("has every guide, both references, and no broken internal link", () => {
    expect(site.guides).toEqual(expect.arrayContaining(["api.html", "security.html", "developing.html"]));
    expect(site.modules).toEqual([
      "@kiln/core",
      "@kiln/core/tools",
      "@kiln/core/engine",
      "@kiln/core/vocabulary",
      "@kiln/server",
      "@kiln/langchain",
      "@kiln/langchain/deepagents",
      "@kiln/vercel-ai",
      "@kiln/mastra",
      "@kiln/mcp",
      "@kiln/kubernetes",
    ]);
    expect(site.operations).toBeGreaterThan(40);
    // The link check ran over thousands of hrefs (TypeDoc's pages included) and found none broken.
    expect(site.links).toBeGreaterThan(1000);
  });

  it("refers to nothing outside the site: no script, stylesheet or image from another host", async () => {
    for (const page of ["index.html", "api.html", "reference/http/index.html", "reference/ts/index.html"]) {
      const html = await readFile(join(site.out, page), "utf8");
      const external = [...html.matchAll(/<(?:script|link|img)\b[^>]*\s(?:src|href)="((?:https?:)?\/\/[^"]*)"/g)];
      expect(
        external.map((m) => m[1]),
        page,
      ).toEqual([]);
    }
  });
});

describe("/docs on a running server", () => {
  it("redirects /docs to /docs/ and serves the index with the guides in its sidebar", async () => {
    const bare = await get("/docs");
    expect(bare.status).toBe(301);
    expect(bare.headers.get("location")).toBe("/docs/");
    const res = await get("/docs/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    const html = await res.text();
    expect(html).toContain('href="api.html"');
    expect(html).toContain('href="reference/ts/index.html"');
    expect(html).toContain('href="reference/http/index.html"');
  });

  it("serves a guide page and the stylesheet with their content types", async () => {
    const guide = (await readGuides(join(REPO_ROOT, "docs"))).find((g) => g.page === "security.html");
    expect(guide).toBeDefined();
    const res = await get("/docs/security.html");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    expect(html).toContain(`<title>${escapeHtml(guide?.title ?? "")} · Kiln</title>`);
    expect(html).toMatch(/<h1 id="[^"]+">/);
    expect(html).toContain('<li class="current"><a href="security.html">');
    const css = await get("/docs/assets/site.css");
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("lists every route of the live OpenAPI document in the HTTP reference", async () => {
    const doc = (await (await get("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.length).toBeGreaterThan(40);
    const res = await get("/docs/reference/http/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const live = operationsIn(await res.text());
    expect(live.sort()).toEqual([...routes].sort());
    // The static copy in the built site says the same.
    expect(operationsIn(await readFile(join(site.out, "reference/http/index.html"), "utf8")).sort()).toEqual(
      [...routes].sort(),
    );
    const spec = await get("/docs/reference/http/openapi.json");
    expect(spec.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await spec.json()).toEqual(doc);
  });

  it("has TypeScript reference pages for Kiln and Sandbox", async () => {
    for (const name of ["Kiln", "Sandbox"]) {
      const res = await get(`/docs/reference/ts/classes/_kiln_core.${name}.html`);
      expect(res.status, name).toBe(200);
      const html = await res.text();
      expect(html).toContain(`Class ${name}`);
    }
    const index = await (await get("/docs/reference/ts/")).text();
    for (const module of ["@kiln/core", "@kiln/core/tools", "@kiln/server", "@kiln/mcp"])
      expect(index).toContain(module);
  });

  it("answers 404 to a missing page, as HTML", async () => {
    const res = await get("/docs/no-such-guide.html");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await res.text()).toContain("Page not found");
  });

  it("never serves a file outside the site, however the path is spelled", async () => {
    // A symlink inside the site that leads out of it is not followed either.
    await symlink("/etc", join(site.out, "escape"));
    const attempts = [
      "/docs/..%2f..%2fetc/passwd",
      "/docs/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
      "/docs/%2e%2e/%2e%2e/etc/passwd",
      "/docs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "/docs/..%5c..%5cetc%5cpasswd",
      "/docs/reference/..%5c..%5c..%5cetc%5cpasswd",
      "/docs/%252e%252e/etc/passwd",
      "/docs/escape/passwd",
      "/docs/assets/%00../../etc/passwd",
    ];
    for (const path of attempts) {
      const res = await get(path);
      expect([400, 404], path).toContain(res.status);
      expect(await res.text(), path).not.toContain("root:");
    }
    for (const path of ["/docs/../../etc/passwd", "/docs/..\\..\\etc\\passwd", "/docs/.%2e/.%2e/etc/passwd"]) {
      const res = await rawGet(path);
      expect([400, 404], path).toContain(res.status);
      expect(res.body, path).not.toContain("root:");
    }
  });
});

describe("/docs before the site is built", () => {
  it("explains how to build it, and still serves the live HTTP reference", async () => {
    const bare = await startServer({
      port: 0,
      dataDir: join(dir, "data-unbuilt"),
      kiln,
      docsDir: join(dir, "not-built"),
      log: () => {},
    });
    try {
      const res = await fetch(`${bare.url}/docs/`);
      expect(res.status).toBe(404);
      const html = await res.text();
      expect(html).toContain("not built");
      expect(html).toContain("pnpm docs:build");
      const reference = await fetch(`${bare.url}/docs/reference/http/`);
      expect(reference.status).toBe(200);
      expect(operationsIn(await reference.text()).length).toBe(site.operations);
    } finally {
      await bare.close();
    }
  });
});
