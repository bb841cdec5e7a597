/**
 * Custom images (kiln.images.build/list/delete). Images are the server's, shared by every
 * organisation (like the runtime image): any key with sandboxes:read lists them and any
 * organisation creates sandboxes from them, but only the server's administrators (orgs:admin,
 * held only by keys of the default organisation) build or delete one, so no tenant can replace
 * or remove an image another tenant uses.
 * Only declarative specs are accepted over HTTP: a Dockerfile build would read a directory of the
 * server's own machine into an image a sandbox can read.
 */
import { createRoute } from "@hono/zod-openapi";
import type { Kiln } from "@kiln/core";
import { v1Route } from "../pipeline/pipeline.ts";
import { ImageBuilt, ImageList, ImageNameParam, ImageSpecBody } from "../schemas.ts";
import { sse, wantsEventStream } from "../sse.ts";
import { type App, CONFLICT, ERRORS, type RouteDeps } from "./common.ts";

export function imageRoutes(app: App, deps: RouteDeps & { kiln: Kiln }): void {
  app.openapi(
    v1Route(
      { scope: "orgs:admin", action: "image.build" },
      createRoute({
        method: "post",
        path: "/v1/images",
        tags: ["images"],
        summary: "Build a custom image from a declarative spec (unchanged spec: found in milliseconds)",
        request: { body: { required: true, content: { "application/json": { schema: ImageSpecBody } } } },
        responses: {
          201: {
            description: "The image; or SSE with Accept: text/event-stream",
            content: {
              "application/json": { schema: ImageBuilt },
              "text/event-stream": {
                schema: {
                  type: "string" as const,
                  description:
                    'data: {"type":"progress","phase","message"} ... then {"type":"done","name","tag"}; a failure ends it with {"type":"error","error":{code,message}}',
                },
              },
            },
          },
          ...ERRORS,
        },
      }),
    ),
    async (c) => {
      const spec = c.req.valid("json");
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => {
            const built = await deps.kiln.images.build(spec, {
              onProgress: (e) => emit({ type: "progress", phase: e.phase, message: e.message }),
              signal,
            });
            return { type: "done", ...built };
          },
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await deps.kiln.images.build(spec, { signal: c.req.raw.signal }), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read", action: "image.list" },
      createRoute({
        method: "get",
        path: "/v1/images",
        tags: ["images"],
        summary: "Custom images (newest tag per name)",
        responses: {
          200: { description: "Images", content: { "application/json": { schema: ImageList } } },
          ...ERRORS,
        },
      }),
    ),
    async (c) => c.json({ images: await deps.kiln.images.list() }, 200),
  );

  app.openapi(
    v1Route(
      { scope: "orgs:admin", action: "image.delete" },
      createRoute({
        method: "delete",
        path: "/v1/images/{name}",
        tags: ["images"],
        summary: "Delete a custom image (409 while a sandbox uses it)",
        request: { params: ImageNameParam },
        responses: { 204: { description: "Deleted" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      await deps.kiln.images.delete(c.req.valid("param").name);
      return c.body(null, 204);
    },
  );
}
