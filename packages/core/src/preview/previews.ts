/**
 * Preview URLs: `sandbox.previewUrl(port)` gives a signed, expiring URL for a server listening
 * on `port` inside the sandbox. Without a Kiln server, a small proxy in this process serves
 * them on 127.0.0.1 (a random port), started on first use and never keeping the process alive
 * on its own. A Kiln server calls `serveAt()` so the URLs point at its own /preview/ routes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { DEFAULT_PREVIEW_EXPIRES_MS, MAX_PREVIEW_EXPIRES_MS } from "../defaults.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { PreviewUrl, PreviewUrlOptions } from "../types.ts";
import { optionalNumber, optionalObject } from "../validate.ts";
import { type OpenPort, PREVIEW_PREFIX, PreviewProxy } from "./proxy.ts";
import { PreviewTokens } from "./token.ts";

export class Previews {
  readonly #open: OpenPort;
  readonly #onHit: ((sandboxId: string) => void) | undefined;
  #tokens = new PreviewTokens();
  #proxy: PreviewProxy;
  #baseUrl: string | undefined;
  #local: Promise<{ server: Server; url: string }> | undefined;

  /** @internal Made by Kiln. */
  constructor(open: OpenPort, onHit?: (sandboxId: string) => void) {
    this.#open = open;
    this.#onHit = onHit;
    this.#proxy = this.#makeProxy();
  }

  /**
   * Serve previews from another HTTP server (a Kiln server): URLs start with `baseUrl`, tokens
   * are signed with `secret` (so they outlive a restart), and that server passes /preview/
   * requests to handleRequest() / handleUpgrade().
   */
  serveAt(baseUrl: string, secret?: Uint8Array): void {
    this.#baseUrl = baseUrl.replace(/\/+$/, "");
    if (secret) {
      this.#tokens = new PreviewTokens(secret);
      this.#proxy = this.#makeProxy();
    }
  }

  async url(sandboxId: string, port: number, options?: PreviewUrlOptions): Promise<PreviewUrl> {
    const valid = optionalNumber("port", port, { min: 1, max: 65_535 });
    if (valid === undefined) throw new InvalidArgumentError("port", "is required");
    const o = optionalObject("options", options);
    const expiresInMs =
      optionalNumber("options.expiresInMs", o.expiresInMs, { min: 1_000, max: MAX_PREVIEW_EXPIRES_MS }) ??
      DEFAULT_PREVIEW_EXPIRES_MS;
    const expiresAt = Date.now() + expiresInMs;
    const token = this.#tokens.sign({ sandboxId, port: valid, expiresAt });
    const base = this.#baseUrl ?? (await this.#localServer()).url;
    return {
      url: `${base}${PREVIEW_PREFIX}${sandboxId}/${valid}/?token=${token}`,
      token,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /** Serves a /preview/ request; false when the URL is not one. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    return this.#proxy.handleRequest(req, res);
  }

  /** Relays a /preview/ WebSocket upgrade; false when the URL is not one. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    return this.#proxy.handleUpgrade(req, socket, head);
  }

  /** Stops the local proxy, if it was started. */
  async close(): Promise<void> {
    const local = this.#local;
    this.#local = undefined;
    if (!local) return;
    const { server } = await local.catch(() => ({ server: undefined }));
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #makeProxy(): PreviewProxy {
    return new PreviewProxy({
      tokens: this.#tokens,
      open: this.#open,
      onHit: (sandboxId) => this.#onHit?.(sandboxId),
    });
  }

  #localServer(): Promise<{ server: Server; url: string }> {
    this.#local ??= new Promise((resolve, reject) => {
      const server = createServer((req, res) => {
        if (!this.handleRequest(req, res)) {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { code: "NOT_FOUND", message: `No route ${req.method} ${req.url}` } }));
        }
      });
      server.on("upgrade", (req, socket, head) => {
        if (!this.handleUpgrade(req, socket, head)) socket.destroy();
      });
      // Neither the listener nor its connections keep the process alive.
      server.on("connection", (socket) => socket.unref());
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.unref();
        const { port } = server.address() as AddressInfo;
        resolve({ server, url: `http://127.0.0.1:${port}` });
      });
    });
    return this.#local;
  }
}
