/**
 * The one transport of the remote client: Node's built-in fetch (undici, which keeps
 * connections alive between requests, so a call costs one loopback round trip, not a TCP
 * handshake) with the Bearer key on every request. Every failure leaves here as a KilnError:
 * an error answer through the code table in http-errors.ts, a connection that fails as
 * ServerUnavailableError naming the URL, an abort as AbortedError. Never a bare fetch error.
 */
import { AbortedError, InvalidArgumentError, KilnError, ServerUnavailableError } from "../errors.ts";
import { type ErrorContext, errorFromResponse } from "./http-errors.ts";

/** An error body is read up to this much; anything beyond is not a Kiln error message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

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

  constructor(url: string, apiKey: string) {
    this.url = normalizeUrl(url);
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
    const target = new URL(this.url + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) target.searchParams.append(key, v);
    }
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

  /** A request whose answer is JSON. */
  async json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const response = await this.send(method, path, options);
    try {
      return (await response.json()) as T;
    } catch (err) {
      throw this.failure(err, options);
    }
  }

  /** A request whose answer has no body worth reading (204, or a 201 we do not need). */
  async empty(method: string, path: string, options: RequestOptions): Promise<void> {
    const response = await this.send(method, path, options);
    await response.body?.cancel().catch(() => {});
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
