/** startServer: storage, keys, Kiln and the HTTP listener, and a bounded graceful close. */

import { createHmac } from "node:crypto";
import { chmod, mkdir, readFile, rm } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { createAdaptorServer } from "@hono/node-server";
import { Kiln } from "@kiln/core";
import { WebSocketServer } from "ws";
import { createApp } from "./app.ts";
import { AuditLog } from "./audit/audit-log.ts";
import { defaultConfig, type ServerConfig, SHUTDOWN_GRACE_MS } from "./config.ts";
import { AdmissionHook } from "./hooks/admission.ts";
import { refuseHookUrl } from "./hooks/private-address.ts";
import { WebhookDispatcher } from "./hooks/webhooks.ts";
import { bootstrap, KeyHasher, loadSecret } from "./pipeline/keys.ts";
import { FailureLimiter } from "./pipeline/rate-limit.ts";
import type { Services } from "./pipeline/services.ts";
import { Tickets } from "./pipeline/tickets.ts";
import { McpHttpSessions } from "./routes/mcp.ts";
import { openStore } from "./store/sql-store.ts";
import { HandleCache } from "./tenancy/handle-cache.ts";
import { QuotaGate } from "./tenancy/quotas.ts";

export interface RunningServer {
  /** e.g. http://127.0.0.1:7420 */
  url: string;
  /** Set only when this start made the admin key; already written to <dataDir>/admin.key (0600). */
  createdAdminKey?: string;
  /** Graceful: stop accepting, finish in-flight requests (bounded), close storage. Sandboxes keep running. */
  close(): Promise<void>;
}

/** A request may take this long to arrive in full (a large upload on a slow link). */
const REQUEST_TIMEOUT_MS = 60 * 60 * 1000;
/**
 * Idle keep-alive connections close after this long. Longer than clients' and proxies' own
 * idle timeouts (undici 4 s, load balancers 60 s), so that the client, not the server, closes an
 * idle connection: otherwise a request sent just as the server closes gets ECONNRESET.
 */
const KEEP_ALIVE_MS = 65_000;

export async function startServer(partial: Partial<ServerConfig> = {}): Promise<RunningServer> {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const config: ServerConfig = { ...defaultConfig(), ...given };
  const log = config.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const tmpDir = join(config.dataDir, "tmp");
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { mode: 0o700 });
  await chmod(tmpDir, 0o700);

  const allowPrivateHooks = config.allowPrivateHooks === true;
  if (config.admissionUrl !== undefined) {
    const refused = await refuseHookUrl(config.admissionUrl, allowPrivateHooks);
    if (refused !== undefined) throw new Error(`KILN_ADMISSION_URL refused: ${refused}`);
  }
  const store = await openStore(config);
  let webhooks: WebhookDispatcher | undefined;
  let kiln: Kiln | undefined;
  try {
    const secret = await loadSecret(config.dataDir);
    const hasher = new KeyHasher(secret);
    const { createdAdminKey } = await bootstrap(store, hasher, {
      dataDir: config.dataDir,
      ...(config.adminKey === undefined ? {} : { adminKey: config.adminKey }),
    });
    kiln =
      config.kiln ??
      new Kiln({
        pool: typeof config.pool !== "number" ? config.pool : config.pool > 0 ? { size: config.pool } : false,
        ...(config.engine === undefined ? {} : { engine: config.engine }),
      });
    const ownKiln = config.kiln === undefined;
    // Build or find the runtime image now, so the first create does not pay for it; an engine
    // that is down only makes /healthz say so.
    if (ownKiln)
      kiln.images.ensure().catch((err) => log(`warning: runtime image not ready: ${(err as Error).message}`));

    webhooks = new WebhookDispatcher(store, { allowPrivate: allowPrivateHooks, log, ...config.webhooks });
    // MCP sessions end with the server: their own sandboxes are deleted (create_sandbox ones stay).
    const mcp = new McpHttpSessions();
    const services: Services = {
      kiln,
      store,
      hasher,
      handles: new HandleCache(),
      audit: new AuditLog(store, log),
      quotas: new QuotaGate(store, kiln),
      webhooks,
      ...(config.admissionUrl === undefined
        ? {}
        : { admission: new AdmissionHook(config.admissionUrl, config.admissionTimeoutMs) }),
      allowPrivateHooks,
      ...(config.sseKeepAliveMs === undefined ? {} : { sseKeepAliveMs: config.sseKeepAliveMs }),
      log,
    };
    const app = createApp({
      mcp,
      services,
      limiter: new FailureLimiter(),
      tickets: new Tickets(),
      maxUploadBytes: config.maxUploadMb * 1024 * 1024,
      tmpDir,
      version: await version(),
      log,
      ...(config.docsDir === undefined ? {} : { docsDir: config.docsDir }),
      sessionKey: createHmac("sha256", secret).update("kiln dashboard sessions").digest(),
      ...(config.publicUrl === undefined ? {} : { publicUrl: config.publicUrl }),
    });
    const server = createAdaptorServer({
      fetch: app.fetch,
      serverOptions: {
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_MS,
        headersTimeout: KEEP_ALIVE_MS + 1000,
      },
      // WebSocket routes (the PTY) go through the app, and so through the pipeline, before upgrading.
      websocket: { server: new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 }) },
    }) as Server;
    // `Expect: 100-continue` (the remote client's uploads): a body the upload limit refuses gets
    // its 413 at once and is never sent; any other goes on as Node's default would.
    const maxUploadBytes = config.maxUploadMb * 1024 * 1024;
    server.on("checkContinue", (req, res) => {
      if (!(Number(req.headers["content-length"]) > maxUploadBytes)) res.writeContinue();
      server.emit("request", req, res);
    });
    const upgraded = servePreviews(server, kiln);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    // Preview URLs point at this server's /preview/ routes; their tokens are signed with a key
    // derived from the server secret, so they survive a restart.
    kiln.previews.serveAt(config.publicUrl ?? url, createHmac("sha256", secret).update("kiln preview tokens").digest());
    const usedKiln = kiln;
    const usedWebhooks = webhooks;
    usedWebhooks.start();
    let closing: Promise<void> | undefined;
    return {
      url,
      ...(createdAdminKey === undefined ? {} : { createdAdminKey }),
      close: () => {
        closing ??= (async () => {
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          await mcp.close().catch(() => {});
          // A keep-alive connection whose request just finished is idle: close it at once.
          server.closeIdleConnections();
          // Upgraded sockets (terminals, preview WebSockets) never finish on their own: end them now
          // (a terminal lives on in its sandbox; its clients reconnect to the next server).
          for (const socket of upgraded) socket.destroy();
          const idle = setInterval(() => server.closeIdleConnections(), 50);
          let timer: NodeJS.Timeout | undefined;
          const grace = new Promise<void>((resolve) => {
            timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
          });
          await Promise.race([closed, grace]);
          clearTimeout(timer);
          clearInterval(idle);
          server.closeAllConnections();
          await closed;
          await usedWebhooks.close();
          await services.audit.flush();
          await store.close();
          if (ownKiln) await usedKiln.close();
          await rm(tmpDir, { recursive: true, force: true });
        })();
        return closing;
      },
    };
  } catch (err) {
    await webhooks?.close().catch(() => {});
    await store.close().catch(() => {});
    if (config.kiln === undefined) await kiln?.close().catch(() => {});
    throw err;
  }
}

/**
 * /preview/{id}/{port}/... (HTTP and WebSocket upgrades) is core's token-checked proxy, outside
 * /v1 and its key pipeline: the preview token is the credential. Everything else goes to the app.
 */
function servePreviews(server: Server, kiln: Kiln): Set<Duplex> {
  const upgraded = new Set<Duplex>();
  for (const event of ["request", "upgrade"] as const) {
    // biome-ignore lint/suspicious/noExplicitAny: node's listeners are untyped
    const listeners = server.listeners(event) as ((...args: any[]) => void)[];
    server.removeAllListeners(event);
    // biome-ignore lint/suspicious/noExplicitAny: request (req, res) and upgrade (req, socket, head)
    server.on(event, (req: IncomingMessage, second: any, head: any) => {
      if (event === "upgrade") {
        upgraded.add(second);
        second.once("close", () => upgraded.delete(second));
      }
      const handled =
        event === "request"
          ? kiln.previews.handleRequest(req, second as ServerResponse)
          : kiln.previews.handleUpgrade(req, second as Duplex, head as Buffer);
      if (handled) return;
      if (event === "upgrade" && req.headers.upgrade?.toLowerCase() !== "websocket") {
        (second as Duplex).destroy(); // only WebSocket upgrades are served outside /preview/
        return;
      }
      for (const listener of listeners) listener(req, second, head);
    });
  }
  return upgraded;
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
