import { describe, expect, it } from "vitest";
import { escapeHtml, type OpenApiDocument, operationAnchor, renderHttpReference } from "./http-reference.ts";

const doc: OpenApiDocument = {
  openapi: "3.1.0",
  info: { title: "Kiln", version: "9.9.9", description: "Errors: { error: { code } }" },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "An API key" } },
    schemas: {
      Thing: {
        type: "object",
        description: "A <thing>",
        required: ["name"],
        properties: {
          name: { type: "string", minLength: 1, maxLength: 8, example: "dev" },
          size: { type: "integer", minimum: 0 },
          tags: { type: "array", items: { type: "string" } },
          state: { type: "string", enum: ["running", "stopped"] },
          inner: { type: "object", properties: { deep: { type: "boolean" } } },
          self: { $ref: "#/components/schemas/Thing" },
        },
      },
      'Evil"><script>': { type: "string", description: "<script>alert(1)</script>" },
    },
  },
  paths: {
    "/v1/things/{id}": {
      get: {
        tags: ["things"],
        summary: "Get a <b>thing</b>",
        security: [{ bearer: [] }],
        "x-kiln-scope": "things:read",
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" }, description: "its id" }],
        responses: {
          200: {
            description: "The thing",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } },
          },
          404: { description: "Not found" },
        },
      },
      post: {
        tags: ["things"],
        summary: "Make one",
        requestBody: {
          required: true,
          content: { "application/json": { schema: { type: "object", properties: { x: { type: "number" } } } } },
        },
        responses: { 201: { description: "Made" } },
      },
    },
    "/healthz": { get: { summary: "Up?", responses: { 200: { description: "ok" } } } },
  },
};

describe("renderHttpReference", () => {
  const html = renderHttpReference(doc);

  it("has one section per operation, found by method and path", () => {
    const ops = [...html.matchAll(/<section class="op" id="([^"]+)" data-method="([a-z]+)" data-path="([^"]+)"/g)];
    expect(ops.map((m) => `${m[2]} ${m[3]}`)).toEqual(["get /v1/things/{id}", "post /v1/things/{id}", "get /healthz"]);
    expect(ops[0]?.[1]).toBe(operationAnchor("get", "/v1/things/{id}"));
    expect(html).toContain("No authentication");
    expect(html).toContain("Authentication: <code>bearer</code>; scope <code>things:read</code></p>");
  });

  it("escapes every string from the document", () => {
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<b>thing</b>");
    expect(html).toContain("Get a &lt;b&gt;thing&lt;/b&gt;");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("Evil&quot;&gt;&lt;script&gt;");
  });

  it("links every schema reference to a section that exists", () => {
    const ids = new Set([...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]));
    const refs = [...html.matchAll(/ href="#([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) expect(ids.has(ref), ref).toBe(true);
  });

  it("shows fields with their limits, and examples made from the schemas (cycles cut)", () => {
    expect(html).toContain('<code>name</code> <span class="req">required</span>');
    expect(html).toContain("length 1 to 8");
    expect(html).toContain("<code>&quot;running&quot;</code> | <code>&quot;stopped&quot;</code>");
    expect(html).toContain(escapeHtml(JSON.stringify({ x: 0 }, null, 2)));
    const example = /<summary>Example 200 response<\/summary><pre><code>([^<]*)<\/code>/.exec(html)?.[1] ?? "";
    const value = JSON.parse(example.replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
    expect(value).toEqual({
      name: "dev",
      size: 0,
      tags: ["string"],
      state: "running",
      inner: { deep: false },
      self: {},
    });
  });

  it("loads nothing from elsewhere: no script, no external stylesheet", () => {
    expect(html).not.toMatch(/<script|<link /);
  });
});
