/**
 * A sandbox's network policy: change it in place, read the egress proxy's decisions. The
 * organisation's default policy and ceiling are the pipeline's `network` step (pipeline.ts).
 */
import { createRoute } from "@hono/zod-openapi";
import { v1Route } from "../pipeline/pipeline.ts";
import { IdParam, NetworkLog, NetworkUpdateBody, SandboxInfo } from "../schemas.ts";
import { type App, CONFLICT, ERRORS, json } from "./common.ts";

export function networkRoutes(app: App): void {
  app.openapi(
    v1Route(
      // network.update: audited, asked of the admission hook, held to the organisation's ceiling.
      { scope: "sandboxes:write", action: "network.update" },
      createRoute({
        method: "put",
        path: "/v1/sandboxes/{id}/network",
        tags: ["sandboxes"],
        summary: "Change a sandbox's network policy (takes effect on its next connection)",
        request: {
          params: IdParam,
          body: { required: true, content: { "application/json": { schema: NetworkUpdateBody } } },
        },
        responses: { 200: json(SandboxInfo, "The sandbox with its new policy"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const tenant = c.var.tenant;
      const sandbox = await tenant.get(c.req.valid("param").id);
      await sandbox.setNetwork(c.req.valid("json").network);
      return c.json(await tenant.info(sandbox), 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/network/log",
        tags: ["sandboxes"],
        summary: "The egress proxy's recent decisions for an allow-list sandbox, oldest first",
        request: { params: IdParam },
        responses: { 200: json(NetworkLog, "Recent decisions"), ...ERRORS },
      }),
    ),
    async (c) => {
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      return c.json({ events: await sandbox.networkLog() }, 200);
    },
  );
}
