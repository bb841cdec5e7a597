/**
 * What `new Kiln({ url, apiKey })` (or KILN_URL + KILN_API_KEY) delegates to: the Kiln API over
 * a Kiln server's HTTP routes (design/server.md). Sandboxes it returns are `RemoteSandbox`es,
 * which are `Sandbox`es. The server validates every request; this side checks only what cannot
 * cross the wire (callbacks, signals) and what it must read itself (names, paths).
 */

import { setTimeout as sleep } from "node:timers/promises";
import {
  ConflictError,
  ForbiddenError,
  InvalidArgumentError,
  NotSupportedError,
  SandboxNotFoundError,
  throwIfAborted,
} from "../errors.ts";
import type { BuildOptions, DockerfileImageSpec, ImageInfo, ImageSpec } from "../images/custom-images.ts";
import type { EnsureOptions } from "../images/runtime-image.ts";
import type { CreateSandboxOptions, SandboxInfo, SnapshotInfo, VolumeInfo } from "../types.ts";
import { describe, isRecord, optionalLabels, optionalObject, requireName } from "../validate.ts";
import { streamCall } from "./event-stream.ts";
import { HttpClient } from "./http-client.ts";
import { RemoteSandbox, type RemoteSandboxInfo } from "./remote-sandbox.ts";

/**
 * getOrCreate racing another caller: how long to wait for the winner's sandbox to become
 * visible. The engine reserves a name before the container can be looked up, and over HTTP the
 * loser's lookup can land in that window.
 */
const RACE_WAIT_MS = 5_000;

export interface RemoteTarget {
  url: string;
  apiKey: string;
}

/**
 * The server a Kiln should talk to: `options.url` (with `options.apiKey`, else KILN_API_KEY),
 * else KILN_URL + KILN_API_KEY from the environment when the options ask for nothing local
 * (`engine`, `docker`, `pool`); undefined for an in-process Kiln. A `pool` keeps a Kiln local
 * so that the server's own Kiln (`new Kiln({ pool })`) never turns into a client of itself
 * when KILN_URL happens to be set where `kiln serve` runs.
 */
export function remoteTarget(options: unknown, env: NodeJS.ProcessEnv = process.env): RemoteTarget | undefined {
  const o = isRecord(options) ? options : {};
  if (o.url !== undefined) {
    if (o.engine !== undefined || o.docker !== undefined) {
      throw new InvalidArgumentError("options.url", "give either url (a Kiln server) or engine/docker, not both");
    }
    if (o.pool !== undefined && o.pool !== false) {
      throw new InvalidArgumentError("options.pool", "a Kiln server keeps its own warm pool (kiln serve --pool)");
    }
    if (typeof o.url !== "string")
      throw new InvalidArgumentError("options.url", `must be a string, got ${describe(o.url)}`);
    const apiKey = o.apiKey ?? env.KILN_API_KEY;
    if (apiKey !== undefined && typeof apiKey !== "string") {
      throw new InvalidArgumentError("options.apiKey", `must be a string, got ${describe(apiKey)}`);
    }
    return { url: o.url, apiKey: apiKey ?? "" };
  }
  if (o.engine !== undefined || o.docker !== undefined || o.pool !== undefined) return undefined;
  const url = env.KILN_URL?.trim();
  if (!url) return undefined;
  return { url, apiKey: typeof o.apiKey === "string" ? o.apiKey : (env.KILN_API_KEY ?? "") };
}

export class RemoteKiln {
  readonly client: HttpClient;
  readonly #defaults: Partial<CreateSandboxOptions>;
  readonly #image: string | undefined;

  readonly snapshots: { list(): Promise<SnapshotInfo[]>; delete(name: string): Promise<void> };
  readonly volumes: {
    create(name: string): Promise<VolumeInfo>;
    list(): Promise<VolumeInfo[]>;
    delete(name: string): Promise<void>;
  };
  readonly images: {
    ensure(options?: EnsureOptions): Promise<string>;
    prune(): Promise<string[]>;
    build(spec: ImageSpec | DockerfileImageSpec, options?: BuildOptions): Promise<{ name: string; tag: string }>;
    list(): Promise<ImageInfo[]>;
    delete(name: string): Promise<void>;
  };

  constructor(target: RemoteTarget, options: { image?: unknown; defaults?: unknown } = {}) {
    this.client = new HttpClient(target.url, target.apiKey);
    if (options.image !== undefined && typeof options.image !== "string") {
      throw new InvalidArgumentError("options.image", `must be a string, got ${describe(options.image)}`);
    }
    this.#image = options.image;
    this.#defaults = optionalObject("options.defaults", options.defaults) as Partial<CreateSandboxOptions>;
    const c = this.client;
    this.snapshots = {
      list: async () =>
        (await c.json<{ snapshots: SnapshotInfo[] }>("GET", "/v1/snapshots", { what: "snapshots.list" })).snapshots,
      delete: async (name) => {
        const valid = requireName("name", name);
        await c.empty("DELETE", `/v1/snapshots/${encodeURIComponent(valid)}`, {
          context: { name: valid },
          what: "snapshots.delete",
        });
      },
    };
    this.volumes = {
      create: (name) => {
        const valid = requireName("name", name);
        return c.json<VolumeInfo>("POST", "/v1/volumes", {
          json: { name: valid },
          context: { name: valid },
          what: "volumes.create",
        });
      },
      list: async () =>
        (await c.json<{ volumes: VolumeInfo[] }>("GET", "/v1/volumes", { what: "volumes.list" })).volumes,
      delete: async (name) => {
        const valid = requireName("name", name);
        await c.empty("DELETE", `/v1/volumes/${encodeURIComponent(valid)}`, {
          context: { name: valid },
          what: "volumes.delete",
        });
      },
    };
    this.images = {
      ensure: (opts) => this.#ensure(opts),
      // The server's runtime images are the server's to prune: nothing to remove on this machine.
      prune: async () => {
        throw new NotSupportedError(`images.prune() runs on the Kiln server's machine, not through ${this.client.url}`);
      },
      // Custom images are the server's (POST/GET/DELETE /v1/images); progress streams as SSE.
      build: async (spec, opts = {}) => {
        if (isRecord(spec) && "dockerfile" in spec) {
          throw new NotSupportedError(
            `images.build({ dockerfile }) through ${this.client.url}: a Dockerfile build reads a directory of the server's machine; build it there, or send a declarative spec`,
          );
        }
        const files = isRecord(spec) && isRecord(spec.files) ? spec.files : undefined;
        if (files && Object.values(files).some((v) => typeof v !== "string")) {
          throw new NotSupportedError("images.build through a server takes files as strings only");
        }
        return streamCall<{ name: string; tag: string }>(
          c,
          "/v1/images",
          spec,
          { ...(opts.signal ? { signal: opts.signal } : {}), what: "images.build" },
          (event) => {
            if (event.type === "progress") {
              opts.onProgress?.({ phase: event.phase as "base" | "build" | "done", message: String(event.message) });
              return undefined;
            }
            if (event.type === "done") return { name: String(event.name), tag: String(event.tag) };
            return undefined;
          },
        );
      },
      list: async () => (await c.json<{ images: ImageInfo[] }>("GET", "/v1/images", { what: "images.list" })).images,
      delete: async (name) => {
        const valid = requireName("name", name);
        await c.empty("DELETE", `/v1/images/${encodeURIComponent(valid)}`, {
          context: { name: valid },
          what: "images.delete",
        });
      },
    };
  }

  /**
   * The server builds and keeps its own runtime image; nothing is built on this machine. This
   * checks that the server answers, that its engine is up and that the key is accepted, and
   * resolves to the image new sandboxes get: this Kiln's `image` option, else the server's
   * runtime image when its /healthz names it, else "" (the server's default).
   */
  async #ensure(options?: EnsureOptions): Promise<string> {
    throwIfAborted(options?.signal, "images.ensure");
    const health = await this.client.json<{ engine?: string; runtimeImage?: string; image?: string }>(
      "GET",
      "/healthz",
      {
        what: "images.ensure",
        ...(options?.signal ? { signal: options.signal } : {}),
      },
    );
    // /healthz needs no key: a cheap authenticated call makes a wrong key fail here, not later
    // (a valid key without the scope to list volumes is fine).
    await this.client.json("GET", "/v1/volumes", { what: "images.ensure" }).catch((err: unknown) => {
      if (!(err instanceof ForbiddenError)) throw err;
    });
    const tag = this.#image ?? health.runtimeImage ?? health.image ?? "";
    options?.onProgress?.({
      phase: "done",
      message: `the Kiln server at ${this.client.url} provides the runtime image${tag ? ` ${tag}` : ""}`,
    });
    return tag;
  }

  async create(options?: CreateSandboxOptions): Promise<RemoteSandbox> {
    const given = optionalObject("options", options);
    const { signal, ...rest } = given as CreateSandboxOptions;
    throwIfAborted(signal, "create");
    // Defaults merge under the call's options as in-process (resources field by field); a
    // snapshot given to the call wins over a default image, and vice versa.
    const body: Record<string, unknown> = {
      ...this.#defaults,
      ...(this.#image === undefined ? {} : { image: this.#image }),
      ...rest,
    };
    if (this.#defaults.resources !== undefined || rest.resources !== undefined) {
      body.resources = { ...this.#defaults.resources, ...optionalObject("options.resources", rest.resources) };
    }
    if (rest.snapshot !== undefined && rest.image === undefined) delete body.image;
    if (rest.image !== undefined && rest.snapshot === undefined) delete body.snapshot;
    const info = await this.client.json<RemoteSandboxInfo>("POST", "/v1/sandboxes", {
      json: body,
      ...(signal ? { signal } : {}),
      ...(typeof rest.name === "string" ? { context: { name: rest.name } } : {}),
      what: "create",
    });
    return new RemoteSandbox(this.client, info);
  }

  async get(idOrName: string): Promise<RemoteSandbox> {
    if (typeof idOrName !== "string" || idOrName.length === 0 || idOrName.includes("\0")) {
      throw new InvalidArgumentError("idOrName", `must be a non-empty string, got ${describe(idOrName)}`);
    }
    return new RemoteSandbox(this.client, await this.#info(idOrName));
  }

  #info(idOrName: string): Promise<RemoteSandboxInfo> {
    return this.client.json<RemoteSandboxInfo>("GET", `/v1/sandboxes/${encodeURIComponent(idOrName)}`, {
      context: { sandbox: idOrName },
      what: "get",
    });
  }

  /** As in-process: the named sandbox (started if stopped), else a new one; a racing creator's wins. */
  async getOrCreate(name: string, options: Omit<CreateSandboxOptions, "name"> = {}): Promise<RemoteSandbox> {
    const valid = requireName("name", name);
    const existing = await this.#findNamed(valid);
    if (existing) return existing;
    try {
      return await this.create({ ...options, name: valid });
    } catch (err) {
      if (err instanceof ConflictError) {
        // Another caller's create holds the name; the engine shows its container a moment later.
        const deadline = Date.now() + RACE_WAIT_MS;
        for (;;) {
          const raced = await this.#findNamed(valid);
          if (raced) return raced;
          if (Date.now() > deadline) break;
          await sleep(100);
        }
      }
      throw err;
    }
  }

  async #findNamed(name: string): Promise<RemoteSandbox | undefined> {
    let info: RemoteSandboxInfo;
    try {
      info = await this.#info(name);
    } catch (err) {
      if (err instanceof SandboxNotFoundError) return undefined;
      throw err;
    }
    const sandbox = new RemoteSandbox(this.client, info);
    if (info.state !== "running") await sandbox.start();
    return sandbox;
  }

  async list(filter?: { labels?: Record<string, string> }): Promise<SandboxInfo[]> {
    const wanted = optionalLabels("filter.labels", optionalObject("filter", filter).labels) ?? {};
    const answer = await this.client.json<{ sandboxes: SandboxInfo[] }>("GET", "/v1/sandboxes", {
      query: { label: Object.entries(wanted).map(([k, v]) => `${k}=${v}`) },
      what: "list",
    });
    return answer.sandboxes;
  }

  sweep(): Promise<never> {
    return Promise.reject(
      new NotSupportedError(
        "kiln.sweep() runs on the machine with the engine: the Kiln server sweeps its own sandboxes",
      ),
    );
  }

  /** Closes the idle keep-alive connections to the server (the server owns pools and sandboxes). Idle ones never hold the process open. */
  async close(): Promise<void> {
    this.client.close();
  }
}
