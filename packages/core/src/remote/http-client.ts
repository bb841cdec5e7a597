/**
 * The one transport of the remote client, with the Bearer key on every request. Calls with a
 * JSON answer (json(), empty(): most calls, including exec and runCode with nothing to stream)
 * go through node:http on a keep-alive agent, so a call costs one loopback round trip, not a TCP
 * handshake; streamed answers (SSE, downloads) through Node's built-in fetch (undici, which keeps
 * its own connections alive); streamed uploads through node:http (see upload()). node:http rather
 * than fetch for the JSON calls: measured on Node 24 (issue 10), fetch's WHATWG layers cost
 * about 0.5 ms more CPU per call, which a busy machine multiplies. Every failure leaves here as a KilnError:
 * an error answer through the code table in http-errors.ts, a connection that fails as
 * ServerUnavailableError naming the URL, an abort as AbortedError. Never a bare fetch error.
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AbortedError, InvalidArgumentError, KilnError, ServerUnavailableError } from "../errors.ts";
import { type ErrorContext, errorFromResponse } from "./http-errors.ts";

/** How long an upload waits for the server's 100 Continue before it sends the body anyway. */
const CONTINUE_WAIT_MS = 1000;
/** Tries of one upload whose connection breaks before any answer (see upload()). */
const UPLOAD_ATTEMPTS = 3;
/** An error body is read up to this much; anything beyond is not a Kiln error message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** A JSON call whose socket stays silent this long fails, as fetch's header and body timeouts do. */
const IDLE_TIMEOUT_MS = 300_000;

export interface RequestOptions {
  query?: Record<string, string | string[] | undefined>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (bytes, or a stream of them sent as it is read). */
  body?: Uint8Array | AsyncIterable<Uint8Array>;
  /** The raw body's length, when known: the server can then refuse an oversized upload before it is sent. */
  contentLength?: number;
  accept?: string;
  signal?: AbortSignal;
  /** What the request is about, for the error classes that carry it. */
  context?: ErrorContext;
  /** Names the call in an AbortedError ("exec", "files.read"). */
  what: string;
}

export class HttpClient {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  readonly #authorization: string;
  /** Keep-alive connections of the JSON calls (idle ones do not hold the process open). */
  readonly #agent: HttpAgent;
  readonly #idleTimeoutMs: number;

  /** `options.idleTimeoutMs` replaces IDLE_TIMEOUT_MS for the JSON calls (tests use a short one). */
  constructor(url: string, apiKey: string, options: { idleTimeoutMs?: number } = {}) {
    this.url = normalizeUrl(url);
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.#agent = this.url.startsWith("https:")
      ? new HttpsAgent({ keepAlive: true })
      : new HttpAgent({ keepAlive: true });
    if (typeof apiKey !== "string" || apiKey.trim() === "") {
      throw new InvalidArgumentError(
        "options.apiKey",
        `a Kiln server at ${this.url} needs an API key: pass { apiKey } or set KILN_API_KEY`,
      );
    }
    if (/[\r\n\0]/.test(apiKey)) throw new InvalidArgumentError("options.apiKey", "must not contain line breaks");
    this.#authorization = `Bearer ${apiKey.trim()}`;
  }

  /** Sends one request; a 2xx answer is returned with its body unread, anything else is thrown as a KilnError. */
  async send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const target = this.#target(path, options.query);
    const headers: Record<string, string> = { authorization: this.#authorization };
    if (options.accept) headers.accept = options.accept;
    let body: RequestInit["body"] | AsyncIterable<Uint8Array> | undefined;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/octet-stream";
      if (options.contentLength !== undefined) headers["content-length"] = String(options.contentLength);
      body = options.body;
    }
    let response: Response;
    try {
      response = await fetch(target, {
        method,
        headers,
        // A stream body needs half-duplex (undici sends it as it is read).
        ...(body === undefined ? {} : { body: body as RequestInit["body"], duplex: "half" }),
        ...(options.signal ? { signal: options.signal } : {}),
      } as RequestInit);
    } catch (err) {
      throw this.failure(err, options);
    }
    if (response.ok) return response;
    const text = await readBounded(response).catch(() => "");
    throw errorFromResponse(response.status, text, response.headers, this.url, options.context);
  }

  /**
   * PUTs a stream with backpressure: read from `open()`'s stream only as fast as the socket
   * takes it. Through node:http rather than fetch, because Node's fetch reads a streamed request
   * body ahead of the socket (measured on Node 24: a 256 MiB upload to a slow reader held all
   * 256 MiB in memory; node:http held 4 MiB). The declared length lets the server refuse an
   * oversized upload before the body is sent; an answer that comes early (413) is the one
   * reported. A connection that breaks before any answer (a server that refused and closed
   * while we were still writing, a stale keep-alive socket) is tried again with a fresh stream:
   * a PUT of the same bytes is idempotent.
   */
  async upload(
    path: string,
    open: () => Readable,
    options: Omit<RequestOptions, "json" | "body"> & { contentLength: number },
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#uploadOnce(path, open(), options);
      if (outcome === undefined) return;
      const code = (outcome as NodeJS.ErrnoException).code;
      if (attempt >= UPLOAD_ATTEMPTS || (code !== "EPIPE" && code !== "ECONNRESET")) {
        throw this.failure(outcome, options);
      }
    }
  }

  /**
   * POSTs a stream of unknown length (chunked), read only as fast as the socket takes it, as
   * upload() does; once: a live stream cannot be sent again. Resolves when the server has answered.
   */
  async postStream(path: string, source: Readable, options: Omit<RequestOptions, "json" | "body">): Promise<void> {
    const outcome = await this.#uploadOnce(path, source, options, "POST");
    if (outcome !== undefined) throw this.failure(outcome, options);
  }

  /** One attempt: undefined when done; the connection's error when it broke before an answer. Else throws. */
  async #uploadOnce(
    path: string,
    source: Readable,
    options: Omit<RequestOptions, "json" | "body">,
    method = "PUT",
  ): Promise<unknown> {
    const target = this.#target(path, options.query);
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    // A body of known length waits for the server's 100 Continue, so an upload the server refuses
    // up front (413) is never written into a socket the server is closing: without it, the
    // refusal often lost the race to EPIPE/ECONNRESET under load. A server that ignores
    // `Expect` gets the body after CONTINUE_WAIT_MS anyway (RFC 9110 §10.1.1).
    const expectContinue = options.contentLength !== undefined && options.contentLength > 0;
    const request = send(target, {
      method,
      headers: {
        authorization: this.#authorization,
        "content-type": "application/octet-stream",
        ...(options.contentLength === undefined ? {} : { "content-length": String(options.contentLength) }),
        ...(expectContinue ? { expect: "100-continue" } : {}),
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      request.once("response", resolve);
      request.once("error", reject);
    });
    const sendBody = () =>
      pipeline(source, request).then(
        () => undefined,
        (err: unknown) => err,
      );
    const sent: Promise<unknown> = expectContinue
      ? new Promise((resolve) => {
          const timer = setTimeout(go, CONTINUE_WAIT_MS);
          function go() {
            clearTimeout(timer);
            request.off("response", skip);
            request.off("error", skip);
            resolve(sendBody());
          }
          function skip() {
            clearTimeout(timer);
            request.off("continue", go);
            resolve(undefined); // answered (or failed) before the body: it is never sent
          }
          request.once("continue", go);
          request.once("response", skip);
          request.once("error", skip);
        })
      : sendBody();
    let response: IncomingMessage;
    try {
      response = await answered;
    } catch (err) {
      source.destroy();
      const local = await sent;
      // A local read failure (it has a syscall) is the caller's to see as is, like in-process.
      if ((local as NodeJS.ErrnoException | undefined)?.syscall === "read") throw local;
      if (options.signal?.aborted) throw this.failure(err, options);
      return err;
    }
    const status = response.statusCode ?? 0;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (size < MAX_ERROR_BODY_BYTES) chunks.push(chunk);
      size += chunk.length;
    }
    if (status >= 200 && status < 300) {
      const failed = await sent;
      if (failed) throw this.failure(failed, options);
      return undefined;
    }
    source.destroy();
    request.destroy(); // a refused body may be unsent or half sent: this connection is done
    const headers = new Headers();
    for (const [key, value] of Object.entries(response.headers)) {
      if (typeof value === "string") headers.set(key, value);
    }
    throw errorFromResponse(status, Buffer.concat(chunks).toString("utf8"), headers, this.url, options.context);
  }

  #target(path: string, query: RequestOptions["query"]): URL {
    const target = new URL(this.url + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) target.searchParams.append(key, v);
    }
    return target;
  }

  /** A request whose answer is JSON. */
  async json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    if (options.body !== undefined) {
      const response = await this.send(method, path, options);
      try {
        return (await response.json()) as T;
      } catch (err) {
        throw this.failure(err, options);
      }
    }
    const body = await this.#exchange(method, path, options);
    try {
      return JSON.parse(body.toString("utf8")) as T;
    } catch (err) {
      throw this.failure(err, options);
    }
  }

  /** A request whose answer has no body worth reading (204, or a 201 we do not need). */
  async empty(method: string, path: string, options: RequestOptions): Promise<void> {
    if (options.body !== undefined) {
      const response = await this.send(method, path, options);
      await response.body?.cancel().catch(() => {});
      return;
    }
    await this.#exchange(method, path, options);
  }

  /** Closes the idle keep-alive connections of the JSON calls. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * One JSON call (a JSON body or none) through node:http on the keep-alive agent; the answer's
   * body when it is a 2xx, else the error it names. A request that fails on a reused keep-alive
   * connection before any answer (the server closed it as the request went out: nothing of it
   * was read) is sent once more on a fresh one, as Node's documentation advises.
   */
  async #exchange(method: string, path: string, options: RequestOptions): Promise<Buffer> {
    const target = this.#target(path, options.query);
    const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json), "utf8");
    const headers: Record<string, string> = { authorization: this.#authorization };
    if (options.accept) headers.accept = options.accept;
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer };
    for (let attempt = 1; ; attempt++) {
      try {
        answer = await this.#exchangeOnce(target, method, headers, payload, options.signal);
        break;
      } catch (err) {
        if (attempt === 1 && (err as { staleSocket?: boolean }).staleSocket && !options.signal?.aborted) continue;
        throw this.failure(err, options);
      }
    }
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(answer.headers)) {
      if (typeof value === "string") responseHeaders.set(key, value);
    }
    const text = answer.body.subarray(0, MAX_ERROR_BODY_BYTES).toString("utf8");
    throw errorFromResponse(answer.status, text, responseHeaders, this.url, options.context);
  }

  #exchangeOnce(
    target: URL,
    method: string,
    headers: Record<string, string>,
    payload: Buffer | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const send = target.protocol === "https:" ? httpsRequest : httpRequest;
      let answered = false;
      const request = send(
        target,
        { method, headers, agent: this.#agent, ...(signal ? { signal } : {}) },
        (response) => {
          answered = true;
          const status = response.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            // An error body is kept up to MAX_ERROR_BODY_BYTES; an answer whole.
            if (ok || size < MAX_ERROR_BODY_BYTES) chunks.push(chunk);
            size += chunk.length;
          });
          response.on("end", () => resolve({ status, headers: response.headers, body: Buffer.concat(chunks) }));
          response.on("error", reject);
          response.on("aborted", () =>
            reject(Object.assign(new Error("the answer was cut short"), { code: "ECONNRESET" })),
          );
        },
      );
      request.setTimeout(this.#idleTimeoutMs, () =>
        request.destroy(Object.assign(new Error(`no answer within ${this.#idleTimeoutMs} ms`), { code: "ETIMEDOUT" })),
      );
      request.on("error", (err: NodeJS.ErrnoException) => {
        const code = err.code;
        if (!answered && request.reusedSocket && (code === "ECONNRESET" || code === "EPIPE")) {
          reject(Object.assign(err, { staleSocket: true }));
        } else reject(err);
      });
      request.end(payload);
    });
  }

  /** Turns whatever fetch or a body read threw into a KilnError. */
  failure(err: unknown, options: { signal?: AbortSignal; what: string }): KilnError {
    if (KilnError.isInstance(err)) return err;
    if (options.signal?.aborted || (err as Error)?.name === "AbortError") {
      return new AbortedError(options.what, { cause: options.signal?.reason ?? err });
    }
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    const code = cause?.code ?? (err as { code?: string })?.code;
    const detail = code ?? cause?.message ?? (err as Error)?.message ?? String(err);
    const hint =
      code === "ECONNREFUSED"
        ? "start one with `kiln serve`, or check KILN_URL"
        : code === "ENOTFOUND" || code === "EAI_AGAIN"
          ? "the host name does not resolve: check KILN_URL"
          : "the connection failed or was cut: check that the server is running and reachable";
    return new ServerUnavailableError(this.url, `No Kiln server answers at ${this.url} (${detail}): ${hint}`, {
      cause: err,
    });
  }
}

function normalizeUrl(url: string): string {
  if (typeof url !== "string" || url.trim() === "") {
    throw new InvalidArgumentError("options.url", "must be the server's URL, e.g. http://127.0.0.1:7420");
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new InvalidArgumentError("options.url", `is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new InvalidArgumentError("options.url", `must be http:// or https://, got ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    throw new InvalidArgumentError("options.url", "must not carry credentials: pass the key as apiKey");
  }
  if (parsed.search || parsed.hash) {
    throw new InvalidArgumentError("options.url", "must not have a query or fragment");
  }
  return parsed.href.replace(/\/+$/, "");
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for await (const chunk of response.body) {
    bytes += chunk.length;
    text += decoder.decode(chunk, { stream: true });
    if (bytes >= MAX_ERROR_BODY_BYTES) break; // leaving the loop cancels the rest of the body
  }
  return text + decoder.decode();
}
