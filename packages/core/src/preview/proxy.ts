/**
 * The preview proxy: `/preview/{sandboxId}/{port}/<path>` to `<path>` on 127.0.0.1:port inside
 * the sandbox, HTTP and WebSocket upgrades, carried over the agent connection (PortTunnel). The
 * same handler serves a local Kiln's own proxy and the server's /preview/ routes.
 *
 * Every request needs a preview token for its sandbox and port: `?token=` (the answer then sets
 * an HttpOnly cookie scoped to `/preview/{id}/{port}/`, so the page's own links and scripts work),
 * the `x-kiln-preview-token` header, or that cookie. Missing, invalid or expired: 401
 * UNAUTHORIZED as JSON, never a redirect. Token, cookie and header never reach the sandbox.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { KilnError } from "../errors.ts";
import type { PreviewTokens } from "./token.ts";

export const PREVIEW_PREFIX = "/preview/";
export const PREVIEW_COOKIE = "kiln_preview_token";
export const PREVIEW_HEADER = "x-kiln-preview-token";
const PATH = /^\/preview\/([A-Za-z0-9_.-]{1,128})\/(\d{1,5})(\/.*)?$/;
/** Headers that belong to one hop and are not forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
]);

export interface PreviewTarget {
  sandboxId: string;
  port: number;
  /** The path and query to send to the sandbox's server (token removed). */
  path: string;
  /** Whether the token came in the query (then the answer sets the cookie). */
  fromQuery: boolean;
  token: string | undefined;
}

/** Opens a TCP stream to port inside the sandbox (through its agent). */
export type OpenPort = (sandboxId: string, port: number) => Promise<Duplex>;

export interface ProxyDeps {
  tokens: PreviewTokens;
  open: OpenPort;
  /** Called for every request that passed the token check (activity, logging). */
  onHit?: (sandboxId: string, port: number) => void;
}

export function parsePreviewUrl(
  rawUrl: string | undefined,
  headers: IncomingMessage["headers"],
): PreviewTarget | undefined {
  if (!rawUrl?.startsWith(PREVIEW_PREFIX)) return undefined;
  const url = new URL(rawUrl, "http://preview.invalid");
  const match = PATH.exec(url.pathname);
  if (!match) return undefined;
  const port = Number(match[2]);
  const queryToken = url.searchParams.get("token") ?? undefined;
  url.searchParams.delete("token");
  const headerToken = headerValue(headers[PREVIEW_HEADER]);
  const token = queryToken ?? headerToken ?? cookieValue(headers.cookie, PREVIEW_COOKIE);
  return {
    sandboxId: match[1] as string,
    port,
    path: (match[3] ?? "/") + url.search,
    fromQuery: queryToken !== undefined,
    token,
  };
}

export class PreviewProxy {
  readonly #deps: ProxyDeps;

  constructor(deps: ProxyDeps) {
    this.#deps = deps;
  }

  /** Serves a /preview/ request; false if the URL is not one (the caller handles it). */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const target = parsePreviewUrl(req.url, req.headers);
    if (!target) return false;
    const refusal = this.#refusal(target);
    if (refusal) {
      sendJson(res, 401, { error: { code: "UNAUTHORIZED", message: refusal } });
      req.resume();
      return true;
    }
    this.#deps.onHit?.(target.sandboxId, target.port);
    this.#forward(req, res, target).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, ...failure(err, target));
      else res.destroy();
    });
    return true;
  }

  /** Relays a WebSocket (any Upgrade) request; false if the URL is not a /preview/ one. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const target = parsePreviewUrl(req.url, req.headers);
    if (!target) return false;
    socket.on("error", () => socket.destroy());
    const refusal = this.#refusal(target);
    if (refusal) {
      writeRawJson(socket, 401, { error: { code: "UNAUTHORIZED", message: refusal } });
      return true;
    }
    this.#deps.onHit?.(target.sandboxId, target.port);
    this.#deps.open(target.sandboxId, target.port).then(
      (tunnel) => {
        if (socket.destroyed) {
          tunnel.destroy();
          return;
        }
        const lines = [`${req.method ?? "GET"} ${target.path} HTTP/1.1`];
        for (const [name, value] of forwardedHeaders(req.rawHeaders, target.port, true))
          lines.push(`${name}: ${value}`);
        tunnel.write(`${lines.join("\r\n")}\r\n\r\n`);
        if (head.length > 0) tunnel.write(head);
        tunnel.on("error", () => socket.destroy());
        socket.on("close", () => tunnel.destroy());
        tunnel.on("close", () => socket.destroy());
        socket.pipe(tunnel);
        tunnel.pipe(socket);
      },
      (err: unknown) => writeRawJson(socket, ...failure(err, target)),
    );
    return true;
  }

  #refusal(target: PreviewTarget): string | undefined {
    if (target.token === undefined) {
      return `This preview needs a token: ?token=, the ${PREVIEW_HEADER} header, or the cookie set by a ?token= visit`;
    }
    const verdict = this.#deps.tokens.verify(target.token, target.sandboxId, target.port);
    return verdict.ok ? undefined : `The preview token is ${verdict.reason}`;
  }

  async #forward(req: IncomingMessage, res: ServerResponse, target: PreviewTarget): Promise<void> {
    const tunnel = await this.#deps.open(target.sandboxId, target.port);
    const headers: [string, string][] = forwardedHeaders(req.rawHeaders, target.port, false);
    await new Promise<void>((resolve, reject) => {
      const upstream = httpRequest({
        method: req.method ?? "GET",
        path: target.path,
        headers: headers.flat(),
        createConnection: () => tunnel as never,
        setHost: false,
      });
      upstream.on("error", reject);
      upstream.on("response", (answer) => {
        const out: string[] = [];
        for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i] as string;
          if (!HOP_BY_HOP.has(name.toLowerCase())) out.push(name, answer.rawHeaders[i + 1] as string);
        }
        if (target.fromQuery && target.token !== undefined) {
          out.push("Set-Cookie", previewCookie(target));
        }
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
        answer.pipe(res);
        answer.on("end", resolve);
        answer.on("error", reject);
      });
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
        tunnel.destroy();
      });
      req.pipe(upstream);
    });
  }
}

function previewCookie(target: PreviewTarget): string {
  return `${PREVIEW_COOKIE}=${target.token}; Path=/preview/${target.sandboxId}/${target.port}/; HttpOnly; SameSite=Lax`;
}

/** The request's headers for the sandbox's server: Host is localhost:port; the token stays here. */
function forwardedHeaders(raw: string[], port: number, upgrade: boolean): [string, string][] {
  const out: [string, string][] = [["Host", `localhost:${port}`]];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    let value = raw[i + 1] as string;
    if (lower === "host" || lower === PREVIEW_HEADER) continue;
    if (HOP_BY_HOP.has(lower) && !(upgrade && (lower === "connection" || lower === "upgrade"))) continue;
    if (lower === "cookie") {
      value = value
        .split(";")
        .map((c) => c.trim())
        .filter((c) => c && !c.startsWith(`${PREVIEW_COOKIE}=`))
        .join("; ");
      if (!value) continue;
    }
    out.push([name, value]);
  }
  if (!upgrade) out.push(["Connection", "close"]);
  return out;
}

function failure(err: unknown, target: PreviewTarget): [number, unknown] {
  const code = (err as { code?: unknown })?.code;
  if (code === "ECONNREFUSED") {
    return [
      502,
      { error: { code: "PORT_UNREACHABLE", message: `Nothing listens on port ${target.port} in the sandbox` } },
    ];
  }
  if (KilnError.isInstance(err)) {
    const status = err.code === "SANDBOX_NOT_FOUND" ? 404 : err.code === "SANDBOX_NOT_RUNNING" ? 409 : 503;
    return [status, { error: { code: err.code, message: err.message } }];
  }
  return [
    502,
    {
      error: {
        code: "PORT_UNREACHABLE",
        message: `The sandbox's port ${target.port} failed: ${(err as Error)?.message}`,
      },
    },
  ];
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

const REASONS: Record<number, string> = {
  401: "Unauthorized",
  404: "Not Found",
  409: "Conflict",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

function writeRawJson(socket: Duplex, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(";") ?? []) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}
