/**
 * Server-Sent Events for exec and code: each `data:` line one JSON object, written as it
 * happens. Output callbacks from core are synchronous, so events go through a queue drained in
 * order with backpressure from the socket (a slow client makes the queue wait, not the server
 * spin); the queue is bounded because core caps each output stream (maxOutputBytes).
 * A failure after the stream began ends it with { type: "error", error: { code, message } }.
 * The client going away aborts `signal`, which cancels the command in the sandbox.
 * A stream silent for `sseKeepAliveMs` (15 s) gets a comment line (`: keep-alive`), which SSE
 * clients ignore: a long quiet command (`sleep 400`) is not cut by a client's or a proxy's idle
 * timeout (undici's fetch gives up on a body silent for 300 s).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "./pipeline/types.ts";

export const DEFAULT_SSE_KEEPALIVE_MS = 15_000;

export type Emit = (event: Record<string, unknown>) => void;

export function wantsEventStream(c: Context): boolean {
  return (c.req.header("accept") ?? "").includes("text/event-stream");
}

export function sse(
  c: Context<AppEnv>,
  run: (emit: Emit, signal: AbortSignal) => Promise<Record<string, unknown>>,
  describeError: (err: unknown) => { code: string; message: string },
): Response {
  return streamSSE(c, async (stream) => {
    const controller = new AbortController();
    const abort = () => controller.abort(new Error("the client went away"));
    stream.onAbort(abort);
    c.req.raw.signal.addEventListener("abort", abort, { once: true });
    let writing: Promise<void> = Promise.resolve();
    let wrote = Date.now();
    const emit: Emit = (event) => {
      const data = JSON.stringify(event);
      wrote = Date.now();
      writing = writing.then(() => (stream.aborted ? undefined : stream.writeSSE({ data })));
    };
    // Through the same queue as events, so a comment never lands inside one.
    const every = c.var.services?.sseKeepAliveMs ?? DEFAULT_SSE_KEEPALIVE_MS;
    const keepAlive = setInterval(
      () => {
        if (Date.now() - wrote < every) return;
        wrote = Date.now();
        writing = writing.then(() => (stream.aborted ? undefined : stream.write(": keep-alive\n\n").then(() => {})));
      },
      Math.max(25, Math.floor(every / 4)),
    );
    try {
      const final = await run(emit, controller.signal);
      emit(final);
    } catch (err) {
      emit({ type: "error", error: describeError(err) });
    } finally {
      clearInterval(keepAlive);
      await writing.catch(() => {});
      c.req.raw.signal.removeEventListener("abort", abort);
    }
  });
}
