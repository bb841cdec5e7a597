/**
 * The streaming routes (exec, code): asked with `Accept: text/event-stream`, each `data:` is a
 * JSON object with a `type`; output events arrive as they happen, the final one (`result`,
 * `execution`) is the complete answer, and `{ type: "error" }` ends a stream that failed after
 * it began. Streams are asked for on every call, not only with callbacks: the answer's headers
 * then come at once, so a long command never meets a client-side header timeout.
 */
import { ServerUnavailableError } from "../errors.ts";
import type { HttpClient, RequestOptions } from "./http-client.ts";
import { errorFromBody, parseErrorBody } from "./http-errors.ts";
import { readSse } from "./sse.ts";

export interface StreamEvent {
  type: string;
  [key: string]: unknown;
}

/**
 * POSTs `json` to `path` and hands every event to `onEvent` until it returns the final answer.
 * A server that ignores the Accept header and answers one JSON body is handled too: that body
 * is the final answer (`finalKey` names where a stream's final event carries it).
 */
export async function streamCall<T>(
  client: HttpClient,
  path: string,
  json: unknown,
  options: Pick<RequestOptions, "signal" | "context" | "what">,
  onEvent: (event: StreamEvent) => T | undefined,
): Promise<T> {
  const response = await client.send("POST", path, { ...options, json, accept: "text/event-stream" });
  const type = response.headers.get("content-type") ?? "";
  // A throw from the caller's own callback (onStdout) is theirs, passed on as it is.
  let callbackError: { error: unknown } | undefined;
  try {
    if (!type.includes("text/event-stream")) {
      return (await response.json()) as T;
    }
    if (!response.body) throw cutShort(client.url, options.what);
    for await (const message of readSse(response.body)) {
      let event: StreamEvent;
      try {
        event = JSON.parse(message.data) as StreamEvent;
      } catch {
        continue; // not one of ours (a keep-alive or a proxy's note)
      }
      if (event.type === "error") {
        const body = parseErrorBody(event) ?? { code: "INTERNAL", message: "the stream failed" };
        throw errorFromBody(body, options.context);
      }
      let final: T | undefined;
      try {
        final = onEvent(event);
      } catch (error) {
        callbackError = { error };
        throw error;
      }
      if (final !== undefined) return final;
    }
  } catch (err) {
    if (callbackError) throw callbackError.error;
    throw client.failure(err, options);
  } finally {
    // Returning early or failing: the rest of the body is not needed (the server sees the close).
    await response.body?.cancel().catch(() => {});
  }
  throw cutShort(client.url, options.what);
}

function cutShort(url: string, what: string): ServerUnavailableError {
  return new ServerUnavailableError(url, `The Kiln server at ${url} ended the ${what} stream before its answer`);
}
