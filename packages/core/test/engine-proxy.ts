// A unix socket that forwards to the Docker engine and can be stopped (an outage) and started
// again, so a test can take "the engine" away without touching the shared dockerd. Used by core's
// engine-faults.test.ts and the server's engine-down.test.ts, as `@kiln/core/test/engine-proxy` (an
// export of the workspace only: publishConfig.exports, what npm users get, leaves it out).
import { rm } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";

/** The real engine's socket: DOCKER_HOST's when it is a unix socket, else Docker's default. */
export const ENGINE_SOCKET = process.env.DOCKER_HOST?.startsWith("unix://")
  ? process.env.DOCKER_HOST.slice("unix://".length)
  : "/var/run/docker.sock";

export class EngineProxy {
  readonly #sockets = new Set<Socket>();
  #server?: Server;
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  /** Listens at `path` (a no-op while listening). */
  async start(): Promise<void> {
    if (this.#server) return;
    await rm(this.path, { force: true });
    const server = createServer((client) => {
      const upstream = createConnection(ENGINE_SOCKET);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.path, resolve));
    this.#server = server;
  }

  /** Drops every open connection and stops listening: the engine is gone for whoever uses `path`. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.path, { force: true });
  }
}
