/**
 * The dashboard (packages/dashboard, built to static files) at `/`. Every GET that no other
 * route answers and that is not under /v1, /preview, /mcp or /docs gets a file of the build, or,
 * when a browser asks for a page (Accept: text/html), index.html (the dashboard routes in the
 * browser); anything else stays the API's 404 NOT_FOUND. Hashed assets are cached for a year, the rest
 * revalidated. Every answer carries a strict Content-Security-Policy: scripts from this server
 * only (no inline script), no framing of the dashboard. Without a build, `/` says how to make one.
 */
import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { App } from "./common.ts";

/** packages/dashboard/dist beside this package (the same from src/ and from a build in dist/). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL("../../../dashboard/dist/", import.meta.url));

/** Paths other parts of the server own: never answered with the dashboard. */
const NOT_OURS = /^\/(v1|preview|mcp|docs|healthz)(\/|$)/;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
};

/**
 * Scripts and everything else from this server only; styles may be inline (xterm.js writes its
 * colours into a <style> element); images may be data:/blob: URLs (a code cell's charts);
 * WebSockets to this server (the terminal).
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self' ws: wss:",
  "frame-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kiln</title></head>
<body><h1>Kiln</h1><p>The API is up at <a href="/v1/openapi.json">/v1/openapi.json</a>, but the dashboard is not built.</p>
<p>Build it with <code>pnpm --filter @kiln/dashboard build</code> (or run <code>scripts/setup.sh dashboard</code>) and reload.</p></body></html>
`;

export function dashboardRoutes(app: App, options: { dir?: string } = {}): void {
  const root = resolve(options.dir ?? process.env.KILN_DASHBOARD_DIR ?? DEFAULT_DASHBOARD_DIR);
  app.on(["GET", "HEAD"], "*", async (c, next) => {
    const raw = new URL(c.req.url).pathname;
    if (NOT_OURS.test(raw)) return next();
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      return next();
    }
    // No way out of the build: no "..", no NUL, no backslash, and the resolved path stays inside.
    if (path.includes("\0") || path.includes("\\") || path.split("/").includes("..")) return next();
    const file = resolve(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) return next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
    const found = await regularFile(file);
    if (found) {
      const immutable = path.startsWith("/assets/");
      c.header("content-type", CONTENT_TYPES[extname(file)] ?? "application/octet-stream");
      c.header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
      return c.req.method === "HEAD" ? c.body(null, 200) : c.body(new Uint8Array(await readFile(file)), 200);
    }
    // A missing asset is a 404. Any other path is a page the dashboard routes itself, for a
    // browser (which asks for text/html); API clients keep the contract's 404 NOT_FOUND.
    if (extname(path) !== "" || path.startsWith("/assets/")) return next();
    if (path !== "/" && !(c.req.header("accept") ?? "").includes("text/html")) return next();
    const index = join(root, "index.html");
    if (!(await regularFile(index))) {
      c.header("cache-control", "no-store");
      return c.html(MISSING_BUILD, 200);
    }
    c.header("content-type", CONTENT_TYPES[".html"] as string);
    c.header("cache-control", "no-cache");
    return c.req.method === "HEAD" ? c.body(null, 200) : c.body(new Uint8Array(await readFile(index)), 200);
  });
}

async function regularFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
