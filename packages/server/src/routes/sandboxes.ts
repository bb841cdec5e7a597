/** Sandboxes: create, list, get, delete, start, stop. Thin: parse, call the tenant's Kiln, answer. */
import { createRoute } from "@hono/zod-openapi";
import { HttpError } from "../errors.ts";
import { v1Route } from "../pipeline/pipeline.ts";
import { CreateSandboxBody, IdOrNameParam, IdParam, ListQuery, SandboxInfo, SandboxList } from "../schemas.ts";
import { type App, CONFLICT, ERRORS, json } from "./common.ts";

export function sandboxRoutes(app: App): void {
  app.openapi(
    v1Route(
      { scope: "sandboxes:write", action: "sandbox.create", quota: "create" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes",
        tags: ["sandboxes"],
        summary: "Create a sandbox (started and ready)",
        request: { body: { required: true, content: { "application/json": { schema: CreateSandboxBody } } } },
        responses: { 201: json(SandboxInfo, "The new sandbox"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const tenant = c.var.tenant;
      const sandbox = await tenant.create(c.req.valid("json"), c.req.raw.signal);
      return c.json(await tenant.createdInfo(sandbox), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read", action: "sandbox.list" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes",
        tags: ["sandboxes"],
        summary: "List sandboxes, optionally those carrying every given label",
        request: { query: ListQuery },
        responses: { 200: json(SandboxList, "The organisation's sandboxes"), ...ERRORS },
      }),
    ),
    async (c) => {
      const given = c.req.valid("query").label;
      const labels: Record<string, string> = {};
      for (const pair of given === undefined ? [] : [given].flat()) {
        const at = pair.indexOf("=");
        if (at <= 0)
          throw new HttpError("INVALID_ARGUMENT", `label must look like key=value, got "${pair}"`, { field: "label" });
        labels[pair.slice(0, at)] = pair.slice(at + 1);
      }
      return c.json({ sandboxes: await c.var.tenant.list(labels) }, 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read", action: "sandbox.get" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{idOrName}",
        tags: ["sandboxes"],
        summary: "A sandbox by id or name",
        request: { params: IdOrNameParam },
        responses: { 200: json(SandboxInfo, "The sandbox"), ...ERRORS },
      }),
    ),
    async (c) => {
      const tenant = c.var.tenant;
      return c.json(await tenant.info(await tenant.get(c.req.valid("param").idOrName)), 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:write", action: "sandbox.delete" },
      createRoute({
        method: "delete",
        path: "/v1/sandboxes/{idOrName}",
        tags: ["sandboxes"],
        summary: "Delete a sandbox and everything in it",
        request: { params: IdOrNameParam },
        responses: { 204: { description: "Deleted" }, ...ERRORS },
      }),
    ),
    async (c) => {
      const tenant = c.var.tenant;
      await tenant.delete(await tenant.get(c.req.valid("param").idOrName));
      return c.body(null, 204);
    },
  );

  for (const action of ["start", "stop"] as const) {
    app.openapi(
      v1Route(
        action === "start"
          ? { scope: "sandboxes:write", action: "sandbox.start", quota: "start" }
          : { scope: "sandboxes:write", action: "sandbox.stop" },
        createRoute({
          method: "post",
          path: `/v1/sandboxes/{id}/${action}`,
          tags: ["sandboxes"],
          summary:
            action === "start"
              ? "Start a stopped sandbox (idempotent)"
              : "Stop a sandbox, keeping its files (idempotent)",
          request: { params: IdParam },
          responses: { 200: json(SandboxInfo, "The sandbox after the change"), ...ERRORS },
        }),
      ),
      async (c) => {
        const tenant = c.var.tenant;
        const sandbox = await tenant.get(c.req.valid("param").id);
        await (action === "start" ? sandbox.start() : sandbox.stop());
        return c.json(await tenant.info(sandbox), 200);
      },
    );
  }
}
