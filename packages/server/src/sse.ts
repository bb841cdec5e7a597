/**
 * Server-Sent Events for exec and code: each `data:` line one JSON object, written as it
 * happens. Output callbacks from core are synchronous, so events go through a queue drained in
 * order with backpressure from the socket (a slow client makes the queue wait, not the server
 * spin); the queue is bounded because core caps each output stream (maxOutputBytes).
 * A failure after the stream began ends it with { type: "error", error: { code, message } }.
 * The client going away aborts `signal`, which cancels the command in the sandbox.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "./pipeline/types.ts";

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
    const emit: Emit = (event) => {
      const data = JSON.stringify(event);
      writing = writing.then(() => (stream.aborted ? undefined : stream.writeSSE({ data })));
    };
    try {
      const final = await run(emit, controller.signal);
      emit(final);
    } catch (err) {
      emit({ type: "error", error: describeError(err) });
    } finally {
      await writing.catch(() => {});
      c.req.raw.signal.removeEventListener("abort", abort);
    }
  });
}
