/** exec and code: one JSON answer, or Server-Sent Events with `Accept: text/event-stream`. */
import { createRoute, z } from "@hono/zod-openapi";
import { ConflictError } from "@kiln/core";
import { HttpError } from "../errors.ts";
import { v1Route } from "../pipeline/pipeline.ts";
import { CodeBody, CommandResult, ExecBody, ExecStdinParam, Execution, IdParam } from "../schemas.ts";
import { sse, wantsEventStream } from "../sse.ts";
import { findExec, openExec } from "../stdin.ts";
import { type App, CONFLICT, ERRORS, type RouteDeps } from "./common.ts";

const streamed = <T extends z.ZodType>(schema: T, description: string, events: string) => ({
  description,
  content: {
    "application/json": { schema },
    "text/event-stream": {
      schema: {
        type: "string" as const,
        description: `${events}. A stream silent for KILN_SSE_KEEPALIVE_MS (15 s) gets a comment line ": keep-alive" (skip it)`,
      },
    },
  },
});

export function runRoutes(app: App, deps: RouteDeps): void {
  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "sandbox.exec" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/exec",
        tags: ["run"],
        summary: "Run a command: a string through sh -c, an array as argv",
        request: {
          params: IdParam,
          body: { required: true, content: { "application/json": { schema: ExecBody } } },
        },
        responses: {
          200: streamed(
            CommandResult,
            "The CommandResult; or SSE with Accept: text/event-stream",
            'data: {"type":"started","execId"} first with cancellable or stdinStream, {"type":"stdout"|"stderr","data"} ... then {"type":"result","result":CommandResult}; a failure ends it with {"type":"error","error":{code,message}}',
          ),
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { command, stdinStream, cancellable, ...options } = c.req.valid("json");
      if (stdinStream && options.stdin !== undefined) {
        throw new HttpError("INVALID_ARGUMENT", "stdinStream: give either stdin or stdinStream, not both", {
          field: "stdinStream",
        });
      }
      if (stdinStream && !wantsEventStream(c)) {
        throw new HttpError(
          "INVALID_ARGUMENT",
          "stdinStream: needs Accept: text/event-stream (its execId is an event)",
          {
            field: "stdinStream",
          },
        );
      }
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => {
            // Named only when asked: a stream of the contract's events otherwise.
            const running =
              stdinStream || cancellable
                ? openExec(c.var.services, c.var.principal.orgId, sandbox.id, { stdin: stdinStream === true })
                : undefined;
            if (running) emit({ type: "started", execId: running.execId });
            try {
              const result = await sandbox.exec(command, {
                ...options,
                ...(running?.feed ? { stdin: running.feed } : {}),
                onStdout: (data) => emit({ type: "stdout", data }),
                onStderr: (data) => emit({ type: "stderr", data }),
                signal: running ? AbortSignal.any([signal, running.cancel.signal]) : signal,
              });
              return { type: "result", result };
            } finally {
              running?.done();
            }
          },
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await sandbox.exec(command, { ...options, signal: c.req.raw.signal }), 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "sandbox.stdin" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/exec/{execId}/stdin",
        tags: ["run"],
        summary: "Live stdin of a running exec (stdinStream: true): the raw body, streamed; its end closes stdin",
        description:
          "Each chunk reaches the command as it arrives, read only as fast as the command takes it. Answers 204 when the body has ended (stdin closed) or the command has; 404 when no such command runs in this sandbox; 409 when another stdin request is already attached.",
        request: {
          params: ExecStdinParam,
          body: {
            required: true,
            content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
          },
        },
        responses: { 204: { description: "stdin delivered (or the command ended)" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { id, execId } = c.req.valid("param");
      const sandbox = await c.var.tenant.get(id);
      const running = findExec(c.var.services, c.var.principal.orgId, sandbox.id, execId);
      if (!running) throw new HttpError("NOT_FOUND", `No command ${execId} is running in sandbox ${id}`);
      const feed = running.feed;
      if (!feed) throw new ConflictError(`Command ${execId} was started without stdinStream: its stdin is closed`);
      if (feed.attached) throw new ConflictError(`Command ${execId} already has its stdin attached`);
      feed.attached = true;
      // The Node request itself: read one chunk at a time, as the command takes them.
      let complete = true;
      try {
        for await (const chunk of c.env.incoming as AsyncIterable<Buffer>) {
          if (!(await feed.push(chunk))) {
            complete = false;
            break;
          }
        }
      } catch {
        complete = false; // the sender went away: the command reads EOF
      } finally {
        feed.end();
      }
      // Stopped reading before the body's end: the connection cannot carry another request.
      if (!complete) c.header("connection", "close");
      return c.body(null, 204);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "sandbox.cancel" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/exec/{execId}/cancel",
        tags: ["run"],
        summary:
          "Kill a running exec or interrupt a running code cell; its stream goes on to the result (status killed)",
        description:
          "execId is the one of the exec or code stream's started event (cancellable: true). Idempotent while the command runs; 404 once it has ended (or for another organisation's).",
        request: { params: ExecStdinParam },
        responses: { 204: { description: "Cancelling: the exec stream ends with its result" }, ...ERRORS },
      }),
    ),
    async (c) => {
      const { id, execId } = c.req.valid("param");
      const sandbox = await c.var.tenant.get(id);
      const running = findExec(c.var.services, c.var.principal.orgId, sandbox.id, execId);
      if (!running) throw new HttpError("NOT_FOUND", `No command ${execId} is running in sandbox ${id}`);
      running.cancel.abort(new Error("cancelled through the API"));
      return c.body(null, 204);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "sandbox.code" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/code",
        tags: ["run"],
        summary: "Run a notebook cell; state persists per (language, context)",
        request: {
          params: IdParam,
          body: { required: true, content: { "application/json": { schema: CodeBody } } },
        },
        responses: {
          200: streamed(
            Execution,
            "The Execution; or SSE with Accept: text/event-stream",
            'data: {"type":"started","execId"} first with cancellable, {"type":"stdout"|"stderr","data"}, {"type":"display","result":Result} as results appear, then {"type":"execution","execution":Execution}; a failure ends it with {"type":"error","error":{code,message}}',
          ),
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      // cancellable means something only on a stream (as for exec): a JSON call ignores it.
      const { code, cancellable, ...options } = c.req.valid("json");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => {
            // A cancellable cell is registered like an exec: the exec cancel route interrupts it.
            const running = cancellable
              ? openExec(c.var.services, c.var.principal.orgId, sandbox.id, { stdin: false })
              : undefined;
            if (running) emit({ type: "started", execId: running.execId });
            try {
              const execution = await sandbox.runCode(code, {
                ...options,
                onStdout: (data) => emit({ type: "stdout", data }),
                onStderr: (data) => emit({ type: "stderr", data }),
                onResult: (result) => emit({ type: "display", result }),
                signal: running ? AbortSignal.any([signal, running.cancel.signal]) : signal,
              });
              return { type: "execution", execution };
            } finally {
              running?.done();
            }
          },
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await sandbox.runCode(code, { ...options, signal: c.req.raw.signal }), 200);
    },
  );
}
