/**
 * Files, streamed both ways through a private temp file on the host (core's files API moves
 * whole files between a sandbox and a host path in 1 MiB chunks): neither direction ever holds
 * a file in memory, and a slow client only slows its own socket.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createRoute, z } from "@hono/zod-openapi";
import { SandboxFileError } from "@kiln/core";
import { HttpError } from "../errors.ts";
import { v1Route } from "../pipeline/pipeline.ts";
import { DeleteFileQuery, FileEntry, FileList, IdParam, MkdirBody, PathQuery } from "../schemas.ts";
import { type App, CONFLICT, ERRORS, json, type RouteDeps, TOO_LARGE } from "./common.ts";

export function fileRoutes(app: App, deps: RouteDeps): void {
  const tooLarge = () =>
    new HttpError("PAYLOAD_TOO_LARGE", `Uploads are limited to ${deps.maxUploadBytes} bytes (KILN_MAX_UPLOAD_MB)`);

  app.openapi(
    v1Route(
      { scope: "files:read", action: "files.read" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/files",
        tags: ["files"],
        summary: "A file's bytes, streamed",
        request: { params: IdParam, query: PathQuery },
        responses: {
          200: {
            description: "The file's bytes",
            content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
          },
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { path } = c.req.valid("query");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      const entry = await sandbox.files.stat(path);
      if (entry.type !== "file") throw new SandboxFileError(entry.path, "EISDIR", `is a ${entry.type}, not a file`);
      const dir = await mkdtemp(join(deps.tmpDir, "get-"));
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        const local = join(dir, "file");
        await sandbox.files.download(path, local);
        handle = await open(local);
      } finally {
        // Unlinked while open: the bytes go away with the descriptor, whatever happens next.
        await rm(dir, { recursive: true, force: true });
      }
      const { size } = await handle.stat();
      const body = Readable.toWeb(handle.createReadStream({ highWaterMark: 256 * 1024 })) as ReadableStream;
      return c.body(body, 200, {
        "content-type": "application/octet-stream",
        "content-length": String(size),
      }) as never;
    },
  );

  app.openapi(
    v1Route(
      { scope: "files:write", action: "files.write" },
      createRoute({
        method: "put",
        path: "/v1/sandboxes/{id}/files",
        tags: ["files"],
        summary: "Write a file (parents created) from the raw body, streamed",
        request: {
          params: IdParam,
          query: PathQuery,
          body: {
            required: true,
            content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
          },
        },
        responses: { 201: json(FileEntry, "The written file"), ...ERRORS, ...CONFLICT, ...TOO_LARGE },
      }),
    ),
    async (c) => {
      const { path } = c.req.valid("query");
      const declared = c.req.header("content-length");
      if (declared !== undefined && Number(declared) > deps.maxUploadBytes) {
        c.header("connection", "close");
        throw tooLarge();
      }
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      const dir = await mkdtemp(join(deps.tmpDir, "put-"));
      try {
        const local = join(dir, "file");
        let received = 0;
        const limit = new Transform({
          transform(chunk: Buffer, _enc, done) {
            received += chunk.length;
            done(received > deps.maxUploadBytes ? tooLarge() : null, chunk);
          },
        });
        // The Node request itself: its backpressure reaches the client's socket (a web stream
        // converted from it would read ahead without bound).
        const source = c.env.incoming;
        try {
          await pipeline(source, limit, createWriteStream(local, { mode: 0o644 }));
        } catch (err) {
          if (err instanceof HttpError) c.header("connection", "close");
          throw err;
        }
        await sandbox.files.upload(local, path);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return c.json(await sandbox.files.stat(path), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "files:read", action: "files.list" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/files/list",
        tags: ["files"],
        summary: "A directory's entries",
        request: { params: IdParam, query: PathQuery },
        responses: { 200: json(FileList, "The entries"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      return c.json({ entries: await sandbox.files.list(c.req.valid("query").path) }, 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "files:read", action: "files.stat" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/files/stat",
        tags: ["files"],
        summary: "One entry (symlinks not followed)",
        request: { params: IdParam, query: PathQuery },
        responses: { 200: json(FileEntry, "The entry"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      return c.json(await sandbox.files.stat(c.req.valid("query").path), 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "files:write", action: "files.mkdir" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/files/mkdir",
        tags: ["files"],
        summary: "Create a directory and its parents (an existing one is fine)",
        request: { params: IdParam, body: { required: true, content: { "application/json": { schema: MkdirBody } } } },
        responses: { 201: json(FileEntry, "The directory"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { path } = c.req.valid("json");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      await sandbox.files.mkdir(path);
      return c.json(await sandbox.files.stat(path), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "files:write", action: "files.delete" },
      createRoute({
        method: "delete",
        path: "/v1/sandboxes/{id}/files",
        tags: ["files"],
        summary: "Remove a file, or a directory with recursive=true (symlinks never followed)",
        request: { params: IdParam, query: DeleteFileQuery },
        responses: { 204: { description: "Removed" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { path, recursive } = c.req.valid("query");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      await sandbox.files.remove(path, { recursive: recursive === "true" });
      return c.body(null, 204);
    },
  );
}
