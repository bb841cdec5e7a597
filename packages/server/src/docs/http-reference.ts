/**
 * The HTTP reference: one self-contained HTML page rendered from the server's own OpenAPI
 * document, so it cannot drift from the routes. `/docs/reference/http/` renders the running
 * server's document; `pnpm docs:build` renders the same page into the static site.
 *
 * Why our own renderer rather than Redoc or Scalar: both are browser apps (about 1 MB of
 * JavaScript) that render the document client-side; this page is plain HTML and CSS (no script,
 * nothing fetched, readable with JavaScript off or with curl), a few hundred lines with no
 * dependency, and every string from the document goes through one escape function.
 */

/** The operation fields that carry a /v1 route's policy (pipeline.ts v1Route writes them). */
export const POLICY_SCOPE = "x-kiln-scope";
export const POLICY_ACTION = "x-kiln-audit-action";

/** The parts of an OpenAPI 3.1 document this page reads (anything else is ignored). */
export interface OpenApiDocument {
  openapi?: string;
  info?: { title?: string; version?: string; description?: string };
  paths?: Record<string, Record<string, unknown>>;
  webhooks?: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, unknown> };
  security?: unknown[];
}

// biome-ignore lint/suspicious/noExplicitAny: a JSON Schema is read field by field, defensively
type Schema = Record<string, any>;
interface Operation {
  method: string;
  path: string;
  op: Schema;
}

export interface HttpReferenceOptions {
  /** Where "Guides" links to (relative to the page). @default "../../" */
  homeHref?: string;
  /** Where the raw document is linked from (relative to the page). @default "openapi.json" */
  specHref?: string;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/** Nested inline objects are shown this deep; deeper ones as "object". */
const MAX_DEPTH = 4;

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
  );
}

/** The anchor of an operation: `op-post-v1-sandboxes-id-exec`. */
export function operationAnchor(method: string, path: string): string {
  return `op-${method.toLowerCase()}-${path.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "")}`;
}

const schemaAnchor = (name: string) => `schema-${name.replace(/[^A-Za-z0-9_-]+/g, "-")}`;

function operationsOf(items: Record<string, Record<string, unknown>> | undefined): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(items ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (op && typeof op === "object") out.push({ method, path, op: op as Schema });
    }
  }
  return out;
}

/** Renders the whole page. */
export function renderHttpReference(doc: OpenApiDocument, options: HttpReferenceOptions = {}): string {
  const home = options.homeHref ?? "../../";
  const spec = options.specHref ?? "openapi.json";
  const schemas = doc.components?.schemas ?? {};
  const r = new Renderer(schemas);
  const title = `${doc.info?.title ?? "API"} HTTP API`;

  const byTag = new Map<string, Operation[]>();
  for (const o of operationsOf(doc.paths)) {
    const tag = Array.isArray(o.op.tags) && typeof o.op.tags[0] === "string" ? o.op.tags[0] : "other";
    byTag.set(tag, [...(byTag.get(tag) ?? []), o]);
  }
  const webhooks = operationsOf(doc.webhooks);

  const nav: string[] = [];
  const body: string[] = [];
  for (const [tag, ops] of byTag) {
    nav.push(`<li><a href="#tag-${escapeHtml(tag)}">${escapeHtml(tag)}</a><ul>`);
    for (const o of ops) nav.push(`<li><a href="#${operationAnchor(o.method, o.path)}">${r.opTitle(o)}</a></li>`);
    nav.push("</ul></li>");
    body.push(`<h2 id="tag-${escapeHtml(tag)}">${escapeHtml(tag)}</h2>`);
    for (const o of ops) body.push(r.operation(o, doc));
  }
  if (webhooks.length > 0) {
    nav.push(`<li><a href="#webhooks">webhooks (sent by the server)</a></li>`);
    body.push(`<h2 id="webhooks">Webhooks (sent by the server)</h2>`);
    for (const o of webhooks) body.push(r.operation(o, doc, true));
  }
  const names = Object.keys(schemas);
  if (names.length > 0) {
    nav.push(`<li><a href="#schemas">schemas</a><ul>`);
    for (const name of names) nav.push(`<li><a href="#${schemaAnchor(name)}">${escapeHtml(name)}</a></li>`);
    nav.push("</ul></li>");
    body.push(`<h2 id="schemas">Schemas</h2>`);
    for (const name of names) body.push(r.component(name, schemas[name] as Schema));
  }

  const auth = Object.entries(doc.components?.securitySchemes ?? {})
    .map(([name, s]) => {
      const scheme = s as Schema;
      const what = scheme.type === "http" ? `HTTP ${scheme.scheme ?? ""}` : String(scheme.type ?? "");
      return `<li><code>${escapeHtml(name)}</code>: ${escapeHtml(what)}${scheme.description ? ` (${escapeHtml(scheme.description)})` : ""}; send <code>Authorization: Bearer &lt;key&gt;</code></li>`;
    })
    .join("");

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<nav class="sidebar">
<p class="home"><a href="${escapeHtml(home)}">← Kiln documentation</a></p>
<p><strong>${escapeHtml(title)}</strong></p>
<ul>${nav.join("")}</ul>
</nav>
<main>
<h1>${escapeHtml(title)}</h1>
<p class="meta">OpenAPI ${escapeHtml(doc.openapi ?? "")} · version ${escapeHtml(doc.info?.version ?? "")} · <a href="${escapeHtml(spec)}">the document (JSON)</a></p>
${doc.info?.description ? `<p>${escapeHtml(doc.info.description)}</p>` : ""}
${auth ? `<p>Authentication:</p><ul>${auth}</ul>` : ""}
${body.join("\n")}
</main>
</body>
</html>
`;
}

class Renderer {
  readonly #schemas: Record<string, Schema>;
  constructor(schemas: Record<string, Schema>) {
    this.#schemas = schemas;
  }

  opTitle(o: Operation): string {
    return `<span class="method ${escapeHtml(o.method)}">${escapeHtml(o.method.toUpperCase())}</span> <code>${escapeHtml(o.path)}</code>`;
  }

  operation(o: Operation, doc: OpenApiDocument, webhook = false): string {
    const { op } = o;
    const out: string[] = [];
    out.push(
      `<section class="op" id="${operationAnchor(o.method, o.path)}" data-method="${escapeHtml(o.method)}" data-path="${escapeHtml(o.path)}">`,
    );
    out.push(`<h3>${this.opTitle(o)}</h3>`);
    if (op.summary) out.push(`<p class="summary">${escapeHtml(op.summary)}</p>`);
    if (op.description) out.push(`<p>${escapeHtml(op.description)}</p>`);
    if (!webhook) {
      const security = (Array.isArray(op.security) ? op.security : doc.security) ?? [];
      const names = security.flatMap((s: unknown) => Object.keys((s as object) ?? {}));
      const scope = op[POLICY_SCOPE] === undefined ? "" : `; scope <code>${escapeHtml(op[POLICY_SCOPE])}</code>`;
      const action =
        op[POLICY_ACTION] === undefined ? "" : `; audit action <code>${escapeHtml(op[POLICY_ACTION])}</code>`;
      out.push(
        `<p class="auth">${names.length > 0 ? `Authentication: ${names.map((n: string) => `<code>${escapeHtml(n)}</code>`).join(", ")}${scope}${action}` : "No authentication"}</p>`,
      );
    }
    const params = (Array.isArray(op.parameters) ? op.parameters : []).map((p: Schema) => this.deref(p));
    if (params.length > 0) {
      out.push("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>");
      for (const p of params) {
        out.push(
          `<tr><td><code>${escapeHtml(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ""}</td><td>${escapeHtml(p.in)}</td><td>${this.type(p.schema ?? {})}</td><td>${escapeHtml(p.description ?? p.schema?.description ?? "")}${this.constraints(p.schema ?? {})}</td></tr>`,
        );
      }
      out.push("</table>");
    }
    const request = op.requestBody ? this.deref(op.requestBody) : undefined;
    if (request) {
      out.push(`<h4>Request body${request.required ? ' <span class="req">required</span>' : ""}</h4>`);
      if (request.description) out.push(`<p>${escapeHtml(request.description)}</p>`);
      out.push(this.content(request.content ?? {}));
    }
    const responses = Object.entries((op.responses ?? {}) as Record<string, Schema>);
    if (responses.length > 0) {
      out.push("<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>");
      for (const [status, raw] of responses) {
        const res = this.deref(raw);
        const bodies = Object.entries((res.content ?? {}) as Record<string, Schema>)
          .map(([type, media]) => `<code>${escapeHtml(type)}</code> ${media.schema ? this.type(media.schema) : ""}`)
          .join("<br>");
        out.push(
          `<tr><td class="status s${escapeHtml(status[0])}">${escapeHtml(status)}</td><td>${escapeHtml(res.description ?? "")}</td><td>${bodies || "(none)"}</td></tr>`,
        );
      }
      out.push("</table>");
      // One example: the first success answer with a JSON body.
      const ok = responses.find(
        ([status, res]) => status.startsWith("2") && this.deref(res).content?.["application/json"],
      );
      const schema = ok && this.deref(ok[1]).content["application/json"].schema;
      if (ok && schema) {
        out.push(
          `<details><summary>Example ${escapeHtml(ok[0])} response</summary><pre><code>${escapeHtml(JSON.stringify(this.example(schema, 0, new Set()), null, 2))}</code></pre></details>`,
        );
      }
    }
    out.push("</section>");
    return out.join("\n");
  }

  /** A request body's media types: the schema, its fields, an example. */
  content(content: Record<string, Schema>): string {
    const out: string[] = [];
    for (const [type, media] of Object.entries(content)) {
      const schema = media.schema ?? {};
      out.push(`<p><code>${escapeHtml(type)}</code>: ${this.type(schema)}</p>`);
      const resolved = this.deref(schema);
      if (resolved.description && !schema.$ref) out.push(`<p>${escapeHtml(resolved.description)}</p>`);
      if (!schema.$ref) out.push(this.fields(resolved, 0));
      if (type.includes("json")) {
        out.push(
          `<details open><summary>Example</summary><pre><code>${escapeHtml(JSON.stringify(this.example(schema, 0, new Set()), null, 2))}</code></pre></details>`,
        );
      }
    }
    return out.join("\n");
  }

  component(name: string, schema: Schema): string {
    const out = [`<section class="schema" id="${schemaAnchor(name)}"><h3>${escapeHtml(name)}</h3>`];
    if (schema.description) out.push(`<p>${escapeHtml(schema.description)}</p>`);
    out.push(`<p>${this.type(schema, true)}</p>`);
    out.push(this.fields(schema, 0));
    out.push(
      `<details><summary>Example</summary><pre><code>${escapeHtml(JSON.stringify(this.example(schema, 0, new Set([name])), null, 2))}</code></pre></details>`,
    );
    out.push("</section>");
    return out.join("\n");
  }

  /** The fields of an object schema as a table (nested inline objects inside), or "". */
  fields(schema: Schema, depth: number): string {
    const props = this.propertiesOf(schema);
    if (props.length === 0 || depth > MAX_DEPTH) return "";
    const rows = props.map(({ name, schema: s, required }) => {
      const nested = s.$ref ? "" : this.fields(s, depth + 1);
      return `<tr><td><code>${escapeHtml(name)}</code>${required ? ' <span class="req">required</span>' : ""}</td><td>${this.type(s)}</td><td>${escapeHtml(s.description ?? "")}${this.constraints(s)}${nested}</td></tr>`;
    });
    return `<table class="fields"><tr><th>field</th><th>type</th><th>description</th></tr>${rows.join("")}</table>`;
  }

  propertiesOf(schema: Schema): { name: string; schema: Schema; required: boolean }[] {
    if (Array.isArray(schema.allOf)) {
      return schema.allOf.flatMap((part: Schema) => this.propertiesOf(this.deref(part)));
    }
    const items = schema.type === "array" && schema.items && !schema.items.$ref ? schema.items : undefined;
    if (items) return this.propertiesOf(items);
    const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
    return Object.entries((schema.properties ?? {}) as Record<string, Schema>).map(([name, s]) => ({
      name,
      schema: s,
      required: required.has(name),
    }));
  }

  /** A short type expression: `string`, `array of FileEntry` (linked), `"a" | "b"`. */
  type(schema: Schema, top = false): string {
    if (!schema || typeof schema !== "object") return "any";
    if (typeof schema.$ref === "string") {
      const name = refName(schema.$ref);
      return name ? `<a href="#${schemaAnchor(name)}">${escapeHtml(name)}</a>` : escapeHtml(schema.$ref);
    }
    if ("const" in schema) return `<code>${escapeHtml(JSON.stringify(schema.const))}</code>`;
    if (Array.isArray(schema.enum)) {
      return schema.enum.map((v: unknown) => `<code>${escapeHtml(JSON.stringify(v))}</code>`).join(" | ");
    }
    for (const key of ["anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) return schema[key].map((s: Schema) => this.type(s)).join(" | ");
    }
    if (Array.isArray(schema.allOf)) return schema.allOf.map((s: Schema) => this.type(s)).join(" &amp; ");
    const types: string[] = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    const parts = types.map((t) => {
      if (t === "array") return `array of ${schema.items ? this.type(schema.items) : "any"}`;
      if (t === "object" && !top && schema.additionalProperties && typeof schema.additionalProperties === "object") {
        return `map of ${this.type(schema.additionalProperties)}`;
      }
      return escapeHtml(schema.format ? `${t} (${schema.format})` : t);
    });
    return parts.length > 0 ? parts.join(" | ") : "any";
  }

  /** Limits worth knowing: lengths, ranges, patterns, defaults. */
  constraints(schema: Schema): string {
    const c: string[] = [];
    const pair = (lo: unknown, hi: unknown, what: string) => {
      if (lo !== undefined && hi !== undefined) c.push(`${what} ${lo} to ${hi}`);
      else if (lo !== undefined) c.push(`${what} ≥ ${lo}`);
      else if (hi !== undefined) c.push(`${what} ≤ ${hi}`);
    };
    pair(schema.minLength, schema.maxLength, "length");
    pair(schema.minimum, schema.maximum, "from");
    pair(schema.minItems, schema.maxItems, "items");
    if (schema.pattern) c.push(`pattern <code>${escapeHtml(schema.pattern)}</code>`);
    if (schema.default !== undefined) c.push(`default <code>${escapeHtml(JSON.stringify(schema.default))}</code>`);
    return c.length > 0 ? ` <span class="limits">(${c.join("; ")})</span>` : "";
  }

  /** A plausible value for a schema: its example, default, first enum value, or one made from its type. */
  example(schema: Schema, depth: number, seen: Set<string>): unknown {
    if (!schema || typeof schema !== "object") return null;
    if (typeof schema.$ref === "string") {
      const name = refName(schema.$ref);
      if (!name || seen.has(name) || !this.#schemas[name]) return {};
      return this.example(this.#schemas[name] as Schema, depth, new Set([...seen, name]));
    }
    if (schema.example !== undefined) return schema.example;
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
    if (schema.default !== undefined) return schema.default;
    if ("const" in schema) return schema.const;
    if (Array.isArray(schema.enum)) return schema.enum[0];
    for (const key of ["anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) {
        const first = schema[key].find((s: Schema) => s.type !== "null") ?? schema[key][0];
        return this.example(first, depth, seen);
      }
    }
    if (Array.isArray(schema.allOf)) {
      return Object.assign({}, ...schema.allOf.map((s: Schema) => this.example(s, depth, seen)));
    }
    const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== "null") : schema.type;
    if (type === "object" || schema.properties) {
      if (depth > MAX_DEPTH) return {};
      const out: Record<string, unknown> = {};
      for (const [name, s] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
        out[name] = this.example(s, depth + 1, seen);
      }
      return out;
    }
    if (type === "array") return depth > MAX_DEPTH ? [] : [this.example(schema.items ?? {}, depth + 1, seen)];
    if (type === "integer" || type === "number") return schema.minimum ?? 0;
    if (type === "boolean") return false;
    if (type === "string") {
      if (schema.format === "date-time") return "2026-01-01T00:00:00.000Z";
      if (schema.format === "uri") return "https://example.com/";
      return "string";
    }
    return null;
  }

  /** A `$ref` to `#/components/...` resolved one level (parameters, request bodies, responses). */
  deref(value: Schema): Schema {
    if (!value || typeof value.$ref !== "string") return value ?? {};
    const parts = value.$ref.replace(/^#\//, "").split("/");
    // biome-ignore lint/suspicious/noExplicitAny: walking the document by a JSON pointer
    let node: any = { components: { schemas: this.#schemas } };
    for (const p of parts) node = node?.[p.replace(/~1/g, "/").replace(/~0/g, "~")];
    return (node as Schema) ?? {};
  }
}

function refName(ref: string): string | undefined {
  const m = /^#\/components\/schemas\/(.+)$/.exec(ref);
  return m?.[1]?.replace(/~1/g, "/").replace(/~0/g, "~");
}

const CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fff; --muted: #5c5c66; --line: #e2e2e8; --code: #f4f4f7; --link: #b3470d; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6ea; --bg: #16161a; --muted: #a0a0ab; --line: #30303a; --code: #22222a; --link: #ff9a5c; } }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; display: flex; }
a { color: var(--link); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: var(--code); padding: 0.8em; overflow-x: auto; border-radius: 6px; }
.sidebar { position: sticky; top: 0; height: 100vh; overflow-y: auto; width: 20rem; flex: none; padding: 1rem; border-right: 1px solid var(--line); font-size: 0.85em; }
.sidebar ul { list-style: none; padding-left: 0.8em; margin: 0.2em 0; }
.sidebar a { text-decoration: none; }
.sidebar li li { white-space: nowrap; }
main { padding: 1rem 2rem 4rem; max-width: 64rem; min-width: 0; }
.meta { color: var(--muted); }
section.op, section.schema { border-top: 1px solid var(--line); padding-top: 0.5em; margin-top: 1.5em; }
h2 { margin-top: 2em; text-transform: capitalize; }
h4 { margin: 1em 0 0.3em; }
.summary { font-weight: 600; }
.auth { color: var(--muted); font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; margin: 0.3em 0; font-size: 0.9em; }
th, td { border: 1px solid var(--line); padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: var(--code); }
table.fields table.fields { margin-top: 0.4em; }
.req { color: #c0392b; font-size: 0.8em; }
.limits { color: var(--muted); font-size: 0.9em; }
.method { display: inline-block; min-width: 4.2em; text-align: center; border-radius: 4px; padding: 0 0.3em; font: 700 0.8em ui-monospace, monospace; color: #fff; background: #777; }
.method.get { background: #2f7d32; } .method.post { background: #1f5fa8; } .method.put { background: #9a6700; } .method.delete { background: #b3261e; } .method.patch { background: #6a3ea1; }
.status { font-family: ui-monospace, monospace; font-weight: 700; } .s2 { color: #2f7d32; } .s4 { color: #b3261e; } .s5 { color: #9a6700; }
@media (max-width: 800px) { body { display: block; } .sidebar { position: static; height: auto; width: auto; border-right: 0; border-bottom: 1px solid var(--line); } }
`;
