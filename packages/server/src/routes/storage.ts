/** Snapshots and volumes, each named within the caller's organisation. */
import { createRoute } from "@hono/zod-openapi";
import { v1Route } from "../pipeline/pipeline.ts";
import {
  IdParam,
  NameParam,
  SnapshotBody,
  SnapshotInfo,
  SnapshotList,
  VolumeBody,
  VolumeInfo,
  VolumeList,
} from "../schemas.ts";
import { type App, CONFLICT, ERRORS, json } from "./common.ts";

export function storageRoutes(app: App): void {
  app.openapi(
    v1Route(
      { scope: "snapshots:write", action: "snapshot.create" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/snapshots",
        tags: ["snapshots"],
        summary: "Snapshot a sandbox's filesystem (and Python variables) under a name",
        request: {
          params: IdParam,
          body: { required: true, content: { "application/json": { schema: SnapshotBody } } },
        },
        responses: { 201: json(SnapshotInfo, "The snapshot"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const tenant = c.var.tenant;
      const sandbox = await tenant.get(c.req.valid("param").id);
      return c.json(await tenant.snapshot(sandbox, c.req.valid("json").name), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read", action: "snapshot.list" },
      createRoute({
        method: "get",
        path: "/v1/snapshots",
        tags: ["snapshots"],
        summary: "The organisation's snapshots",
        responses: { 200: json(SnapshotList, "Snapshots"), ...ERRORS },
      }),
    ),
    async (c) => c.json({ snapshots: await c.var.tenant.snapshots() }, 200),
  );

  app.openapi(
    v1Route(
      { scope: "snapshots:write", action: "snapshot.delete" },
      createRoute({
        method: "delete",
        path: "/v1/snapshots/{name}",
        tags: ["snapshots"],
        summary: "Delete a snapshot",
        request: { params: NameParam },
        responses: { 204: { description: "Deleted" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      await c.var.tenant.deleteSnapshot(c.req.valid("param").name);
      return c.body(null, 204);
    },
  );

  app.openapi(
    v1Route(
      { scope: "volumes:write", action: "volume.create" },
      createRoute({
        method: "post",
        path: "/v1/volumes",
        tags: ["volumes"],
        summary: "Create a named volume (outlives sandboxes)",
        request: { body: { required: true, content: { "application/json": { schema: VolumeBody } } } },
        responses: { 201: json(VolumeInfo, "The volume"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => c.json(await c.var.tenant.createVolume(c.req.valid("json").name), 201),
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:read", action: "volume.list" },
      createRoute({
        method: "get",
        path: "/v1/volumes",
        tags: ["volumes"],
        summary: "The organisation's volumes",
        responses: { 200: json(VolumeList, "Volumes"), ...ERRORS },
      }),
    ),
    async (c) => c.json({ volumes: await c.var.tenant.volumes() }, 200),
  );

  app.openapi(
    v1Route(
      { scope: "volumes:write", action: "volume.delete" },
      createRoute({
        method: "delete",
        path: "/v1/volumes/{name}",
        tags: ["volumes"],
        summary: "Delete a volume (409 while a sandbox uses it)",
        request: { params: NameParam },
        responses: { 204: { description: "Deleted" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      await c.var.tenant.deleteVolume(c.req.valid("param").name);
      return c.body(null, 204);
    },
  );
}
