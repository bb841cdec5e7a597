/** exec and code: one JSON answer, or Server-Sent Events with `Accept: text/event-stream`. */
import { createRoute, type z } from "@hono/zod-openapi";
import { v1Route } from "../pipeline/pipeline.ts";
import { CodeBody, CommandResult, ExecBody, Execution, IdParam } from "../schemas.ts";
import { sse, wantsEventStream } from "../sse.ts";
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
            'data: {"type":"stdout"|"stderr","data"} ... then {"type":"result","result":CommandResult}; a failure ends it with {"type":"error","error":{code,message}}',
          ),
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { command, ...options } = c.req.valid("json");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => {
            const result = await sandbox.exec(command, {
              ...options,
              onStdout: (data) => emit({ type: "stdout", data }),
              onStderr: (data) => emit({ type: "stderr", data }),
              signal,
            });
            return { type: "result", result };
          },
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await sandbox.exec(command, { ...options, signal: c.req.raw.signal }), 200);
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
            'data: {"type":"stdout"|"stderr","data"}, {"type":"display","result":Result} as results appear, then {"type":"execution","execution":Execution}; a failure ends it with {"type":"error","error":{code,message}}',
          ),
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { code, ...options } = c.req.valid("json");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => {
            const execution = await sandbox.runCode(code, {
              ...options,
              onStdout: (data) => emit({ type: "stdout", data }),
              onStderr: (data) => emit({ type: "stderr", data }),
              onResult: (result) => emit({ type: "display", result }),
              signal,
            });
            return { type: "execution", execution };
          },
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await sandbox.runCode(code, { ...options, signal: c.req.raw.signal }), 200);
    },
  );
}
