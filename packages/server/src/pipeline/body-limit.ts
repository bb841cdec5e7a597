/**
 * The size limit of JSON bodies, without web streams. Hono's bodyLimit reads `c.req.raw.body`,
 * which makes @hono/node-server build a whole web Request around the Node IncomingMessage (an
 * undici Request, a ReadableStream over the socket) just to look at Content-Length; the route's
 * validator then reads the body through that stream. Measured on Node 24 (issue 10), that was
 * the largest single cost of the server's request path. This middleware takes the limit from
 * the IncomingMessage's headers instead, so the body is later read straight from the socket
 * (node-server's direct read behind `c.req.json()`), once.
 *
 * Same answers as bodyLimit: a declared Content-Length over the limit is refused at once (413,
 * the body never read); a chunked body is counted as it is read, through Hono's bodyLimit as
 * before (no client of ours sends one, so that path stays as it was); an HTTP/1.1 request with
 * neither header has no body.
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./types.ts";

export function jsonBodyLimit(maxBytes: number, refuse: () => never): MiddlewareHandler<AppEnv> {
  const counted = bodyLimit({ maxSize: maxBytes, onError: refuse });
  return async (c, next) => {
    const method = c.req.method;
    // A GET or HEAD has no body for Hono (bodyLimit lets it through): nothing to limit.
    if (method === "GET" || method === "HEAD") return next();
    const incoming = c.env?.incoming;
    const headers = incoming?.headers;
    if (headers === undefined || headers["transfer-encoding"] !== undefined) return counted(c, next);
    const length = headers["content-length"];
    if (length !== undefined) return Number.parseInt(length, 10) > maxBytes ? refuse() : next();
    // HTTP/1.1 without either header: no body (RFC 9112 6.3), e.g. a DELETE. HTTP/2 has no
    // chunked encoding, so there a body may come without Content-Length: count it.
    return incoming?.httpVersionMajor === 1 ? next() : counted(c, next);
  };
}
