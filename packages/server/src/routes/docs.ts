/**
 * /docs: the documentation site `pnpm docs:build` makes (guides, the TypeScript reference), served
 * as static files, and the HTTP reference rendered from this server's own OpenAPI document, so
 * it always describes the routes that answer here. No authentication (like /v1/openapi.json),
 * nothing fetched from elsewhere (the Content-Security-Policy allows this origin only).
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "hono";
import { escapeHtml, type OpenApiDocument, renderHttpReference } from "../docs/http-reference.ts";
import type { App } from "./common.ts";

/** Where `pnpm docs:build` writes the site: `docs-site/` at the repository's root. */
export const DEFAULT_DOCS_DIR = fileURLToPath(new URL("../../../../docs-site/", import.meta.url));
const HTTP_REFERENCE = "reference/http/";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

const HEADERS = {
  "x-content-type-options": "nosniff",
  // Scripts and styles of this origin only (TypeDoc's pages use a small inline script).
  "content-security-policy":
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  // A rebuilt site shows at once.
  "cache-control": "no-cache",
};

export interface DocsRoutesOptions {
  /** The built site. @default DEFAULT_DOCS_DIR */
  dir?: string | undefined;
  /** This app's OpenAPI route, rendered as the HTTP reference. */
  openApiPath: string;
}

export function docsRoutes(app: App, options: DocsRoutesOptions): void {
  const dir = options.dir ?? DEFAULT_DOCS_DIR;
  // The site's root, if built (realpath: every file served must resolve inside it).
  const siteRoot = () => realpath(dir).catch(() => undefined);
  let reference: { html: string; json: string } | undefined;
  const liveReference = async () => {
    if (reference) return reference;
    const res = await app.request(options.openApiPath);
    const json = await res.text();
    const html = renderHttpReference(JSON.parse(json) as OpenApiDocument, {
      homeHref: "../../",
      specHref: "openapi.json",
    });
    reference = { html, json };
    return reference;
  };

  app.get("/docs", (c) => c.redirect("/docs/", 301));
  app.get("/docs/*", async (c) => {
    const raw = new URL(c.req.url).pathname.slice("/docs/".length);
    const segments: string[] = [];
    for (const part of raw.split("/")) {
      let name: string;
      try {
        name = decodeURIComponent(part);
      } catch {
        return page(c, 400, "Bad request", "<p>The path is not valid percent-encoding.</p>");
      }
      // Each segment is one plain name: no traversal, no separators smuggled in encoded.
      if (name === "." || name === ".." || /[/\\\0]/.test(name)) return notFound(c);
      segments.push(name);
    }
    const last = segments.at(-1) ?? "";
    const path = segments.join("/");
    if (path === HTTP_REFERENCE || path === `${HTTP_REFERENCE}index.html`) {
      return send(c, 200, ".html", (await liveReference()).html);
    }
    if (path === `${HTTP_REFERENCE}openapi.json`) return send(c, 200, ".json", (await liveReference()).json);

    const site = await siteRoot();
    if (site === undefined) return notBuilt(c, dir);
    const wanted = join(site, ...segments.filter((s) => s !== ""), last === "" ? "index.html" : "");
    let file: string;
    try {
      file = await realpath(wanted);
    } catch {
      return notFound(c);
    }
    if (!file.startsWith(site + sep)) return notFound(c);
    const info = await stat(file);
    if (info.isDirectory()) return c.redirect(`/docs/${raw}/`, 301);
    if (!info.isFile()) return notFound(c);
    return send(c, 200, extname(file).toLowerCase(), await readFile(file));
  });
}

function send(c: Context, status: 200 | 400 | 404, ext: string, body: string | Uint8Array) {
  const headers: Record<string, string> = { ...HEADERS, "content-type": TYPES[ext] ?? "application/octet-stream" };
  return c.body(typeof body === "string" ? body : new Uint8Array(body), status, headers);
}

function page(c: Context, status: 400 | 404, title: string, html: string) {
  return send(
    c,
    status,
    ".html",
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}code,pre{background:#f4f4f7;padding:0.1em 0.3em;border-radius:4px}</style></head><body><h1>${escapeHtml(title)}</h1>${html}<p><a href="/docs/">Documentation home</a> · <a href="/docs/${HTTP_REFERENCE}">HTTP API reference</a></p></body></html>`,
  );
}

const notFound = (c: Context) => page(c, 404, "Page not found", "<p>No documentation page at this address.</p>");

function notBuilt(c: Context, dir: string) {
  return page(
    c,
    404,
    "The documentation site is not built",
    `<p>This server looks for the built site in <code>${escapeHtml(dir)}</code> and found nothing there. Build it from a checkout of Kiln:</p><pre>pnpm docs:build</pre><p>(<code>bash scripts/setup.sh</code> builds it too), or point <code>KILN_DOCS_DIR</code> at a built copy. The HTTP API reference below is rendered from this server's own OpenAPI document and needs no build.</p>`,
  );
}
