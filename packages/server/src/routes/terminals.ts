/**
 * Terminals, background processes, previews and tickets. Thin like every route: parse, reach
 * the sandbox through the organisation's view of Kiln, call core, answer. The PTY WebSocket is a
 * /v1 route too, so the pipeline (key or ticket, scope, organisation) runs before the upgrade.
 *
 * PTY WebSocket frames: binary = terminal bytes both ways; text from the client
 * `{"type":"resize","cols","rows"}`; text from the server `{"type":"exit","exitCode"}` after the
 * last output, then a normal close. On connect the scrollback comes first. A client that reads
 * slowly is paused (the session and its other clients go on) and resumes with what the
 * sandbox still keeps of what it missed.
 */

import { upgradeWebSocket } from "@hono/node-server";
import { createRoute } from "@hono/zod-openapi";
import type { Pty } from "@kiln/core";
import type { Context } from "hono";
import type { WebSocket } from "ws";
import { HttpError } from "../errors.ts";
import { v1Route } from "../pipeline/pipeline.ts";
import type { AppEnv } from "../pipeline/types.ts";
import {
  IdParam,
  LogsQuery,
  PidParam,
  PortParam,
  Preview,
  PreviewBody,
  ProcessBody,
  ProcessList,
  ProcessLogs,
  ProcessStarted,
  PtyBody,
  PtyCreated,
  PtyParam,
  SignalBody,
  Ticket,
} from "../schemas.ts";
import { sse, wantsEventStream } from "../sse.ts";
import { type App, CONFLICT, ERRORS, json, type RouteDeps } from "./common.ts";

/** Above this many unsent bytes a WebSocket client counts as slow: its terminal handle pauses. */
const WS_HIGH_WATER_BYTES = 1024 * 1024;
/** ...and resumes once its backlog is under this. */
const WS_LOW_WATER_BYTES = 256 * 1024;
const WS_DRAIN_POLL_MS = 10;
/** A terminal attached for a handshake that never completes is let go after this long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TerminalDeps extends RouteDeps {
  tickets: { issue(principal: AppEnv["Variables"]["principal"]): { ticket: string; expiresAt: string } };
}

export function terminalRoutes(app: App, deps: TerminalDeps): void {
  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "pty.open" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/pty",
        tags: ["terminals"],
        summary: "Open a terminal (a login shell unless command); connect to it over the WebSocket route",
        request: { params: IdParam, body: { required: true, content: { "application/json": { schema: PtyBody } } } },
        responses: { 201: json(PtyCreated, "The terminal's id"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      const pty = await sandbox.pty.create(c.req.valid("json"));
      pty.close(); // the session lives in the sandbox; clients attach over the WebSocket
      return c.json({ ptyId: pty.id }, 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "pty.attach" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/pty/{ptyId}",
        tags: ["terminals"],
        summary: "Attach to a terminal (WebSocket; ?ticket= for browsers)",
        description:
          'Binary frames carry terminal bytes both ways. Text frames: {"type":"resize","cols","rows"} from the client, applied in order with its bytes; {"type":"exit","exitCode"} from the server after the last output. The scrollback is replayed first.',
        request: { params: PtyParam },
        middleware: [upgradeWebSocket((c) => attachTerminal(c as Context<AppEnv>))],
        responses: { 101: { description: "Switching Protocols: the terminal's WebSocket" }, ...ERRORS },
      }),
    ),
    () => {
      throw new HttpError("INVALID_ARGUMENT", "This route is a WebSocket: send Upgrade: websocket", {
        field: "upgrade",
      });
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "pty.close" },
      createRoute({
        method: "delete",
        path: "/v1/sandboxes/{id}/pty/{ptyId}",
        tags: ["terminals"],
        summary: "End a terminal's program (SIGKILL, its foreground job too); attached clients get the exit frame",
        request: { params: PtyParam },
        responses: { 204: { description: "Killed" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { id, ptyId } = c.req.valid("param");
      const sandbox = await c.var.tenant.get(id);
      const pty = await sandbox.pty.connect(ptyId);
      try {
        await pty.kill();
      } finally {
        pty.close();
      }
      return c.body(null, 204);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "process.start" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/processes",
        tags: ["processes"],
        summary: "Start a background process (it outlives this request; stopped with the sandbox)",
        request: {
          params: IdParam,
          body: { required: true, content: { "application/json": { schema: ProcessBody } } },
        },
        responses: { 201: json(ProcessStarted, "Its pid (and tag)"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { command, ...options } = c.req.valid("json");
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      return c.json(await sandbox.processes.start(command, options), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "process.list" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/processes",
        tags: ["processes"],
        summary: "Background processes, running and recently ended",
        request: { params: IdParam },
        responses: { 200: json(ProcessList, "The processes"), ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const sandbox = await c.var.tenant.get(c.req.valid("param").id);
      return c.json({ processes: await sandbox.processes.list() }, 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "process.logs" },
      createRoute({
        method: "get",
        path: "/v1/sandboxes/{id}/processes/{pid}/logs",
        tags: ["processes"],
        summary: "A background process's output (the last 1 MiB per stream); ?follow=true streams until it ends",
        request: { params: PidParam, query: LogsQuery },
        responses: {
          200: {
            description:
              "{ stdout, stderr } (and exitCode once it ended, with follow); or SSE with Accept: text/event-stream",
            content: {
              "application/json": { schema: ProcessLogs },
              "text/event-stream": {
                schema: {
                  type: "string" as const,
                  description:
                    'data: {"type":"stdout"|"stderr","data"} ... then {"type":"result","result":{stdout,stderr,exitCode?}}',
                },
              },
            },
          },
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { id, pid } = c.req.valid("param");
      const follow = c.req.valid("query").follow === "true";
      const sandbox = await c.var.tenant.get(id);
      const read = async (signal: AbortSignal, emit?: (e: Record<string, unknown>) => void) => {
        const logs = await sandbox.processes.logs(pid, {
          follow,
          signal,
          ...(emit
            ? {
                onStdout: (data: string) => emit({ type: "stdout", data }),
                onStderr: (data: string) => emit({ type: "stderr", data }),
              }
            : {}),
        });
        if (!follow || signal.aborted) return logs;
        return { ...logs, ...(await sandbox.processes.wait(pid)) };
      };
      if (wantsEventStream(c)) {
        return sse(
          c,
          async (emit, signal) => ({ type: "result", result: await read(signal, emit) }),
          (err) => deps.describeError(c, err),
        ) as never;
      }
      return c.json(await read(c.req.raw.signal), 200);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "process.signal" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/processes/{pid}/signal",
        tags: ["processes"],
        summary: "Signal a background process's group (SIGTERM unless said)",
        request: {
          params: PidParam,
          body: { required: false, content: { "application/json": { schema: SignalBody } } },
        },
        responses: { 204: { description: "Sent" }, ...ERRORS, ...CONFLICT },
      }),
    ),
    async (c) => {
      const { id, pid } = c.req.valid("param");
      const sandbox = await c.var.tenant.get(id);
      const body = (c.req.valid("json") ?? {}) as { signal?: string };
      await sandbox.processes.signal(pid, body.signal ?? "SIGTERM");
      return c.body(null, 204);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "preview.create" },
      createRoute({
        method: "post",
        path: "/v1/sandboxes/{id}/ports/{port}/preview",
        tags: ["previews"],
        summary: "A signed, expiring URL for a server on this port inside the sandbox (network none works too)",
        request: {
          params: PortParam,
          body: { required: false, content: { "application/json": { schema: PreviewBody } } },
        },
        responses: {
          201: json(Preview, "The URL (with its token), the token, when it expires"),
          ...ERRORS,
          ...CONFLICT,
        },
      }),
    ),
    async (c) => {
      const { id, port } = c.req.valid("param");
      const sandbox = await c.var.tenant.get(id);
      const body = (c.req.valid("json") ?? {}) as { expiresInMs?: number };
      return c.json(await sandbox.previewUrl(port, body), 201);
    },
  );

  app.openapi(
    v1Route(
      { scope: "sandboxes:exec", action: "ticket.create" },
      createRoute({
        method: "post",
        path: "/v1/tickets",
        tags: ["terminals"],
        summary: "A one-time ticket (60 s) for a browser WebSocket: ?ticket= instead of Authorization",
        responses: { 201: json(Ticket, "The ticket"), ...ERRORS },
      }),
    ),
    (c) => c.json(deps.tickets.issue(c.var.principal), 201),
  );
}

/** Runs in the pipeline, before the upgrade: a missing sandbox or terminal is a plain 404. */
async function attachTerminal(c: Context<AppEnv>) {
  const { id, ptyId } = c.req.param() as { id: string; ptyId: string };
  const sandbox = await c.var.tenant.get(id);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return {};
  const pty = await sandbox.pty.connect(ptyId);
  const abandoned = setTimeout(() => pty.close(), HANDSHAKE_TIMEOUT_MS);
  let ws: WebSocket | undefined;
  return {
    onOpen(_event: Event, ctx: { raw?: unknown }) {
      clearTimeout(abandoned);
      ws = ctx.raw as WebSocket;
      bridge(pty, ws);
    },
    onMessage(event: MessageEvent) {
      if (typeof event.data !== "string") {
        pty.write(new Uint8Array(event.data as ArrayBuffer));
        return;
      }
      let message: { type?: unknown; cols?: unknown; rows?: unknown };
      try {
        message = JSON.parse(event.data);
      } catch {
        ws?.close(1003, "text frames must be JSON");
        return;
      }
      if (message.type === "resize") {
        // Sent to the sandbox at once, so bytes that arrive after it are applied after it.
        pty.resize(message.cols as number, message.rows as number).catch(() => ws?.close(1003, "invalid resize"));
      }
    },
    onClose() {
      clearTimeout(abandoned);
      pty.close();
    },
    onError() {
      pty.close();
    },
  };
}

function bridge(pty: Pty, ws: WebSocket): void {
  let drainTimer: NodeJS.Timeout | undefined;
  pty.onData((bytes) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(bytes, { binary: true });
    if (ws.bufferedAmount > WS_HIGH_WATER_BYTES && drainTimer === undefined) {
      // A slow reader: stop taking output for it; the sandbox keeps it (the last 1 MiB).
      pty.pause();
      drainTimer = setInterval(() => {
        if (ws.readyState !== ws.OPEN || ws.bufferedAmount < WS_LOW_WATER_BYTES) {
          clearInterval(drainTimer);
          drainTimer = undefined;
          if (ws.readyState === ws.OPEN) pty.resume();
        }
      }, WS_DRAIN_POLL_MS);
    }
  });
  ws.on("close", () => clearInterval(drainTimer));
  pty.wait().then(
    async ({ exitCode }) => {
      // After the last output: wait until it is on the wire, then say so and close.
      while (ws.readyState === ws.OPEN && (drainTimer !== undefined || ws.bufferedAmount > 0)) {
        await new Promise((resolve) => setTimeout(resolve, WS_DRAIN_POLL_MS));
      }
      if (ws.readyState !== ws.OPEN) return;
      ws.send(JSON.stringify({ type: "exit", exitCode }));
      ws.close(1000, "exited");
    },
    () => {
      if (ws.readyState === ws.OPEN) ws.close(1011, "the sandbox went away");
    },
  );
}
