// A real server on a loopback port with a private data dir, and a tiny fetch wrapper.
// Every sandbox a test makes carries the test-run label and is deleted after the file.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln, type KilnOptions } from "@kiln/core";
import { afterAll, inject, onTestFinished } from "vitest";
import { type RunningServer, type ServerConfig, startServer } from "../src/index.ts";
import { TEST_RUN } from "./test-run.ts";

export const TEST_LABELS = { "test-run": TEST_RUN };

export interface TestServer {
  url: string;
  key: string;
  dataDir: string;
  server: RunningServer;
  kiln: Kiln;
  /** What the server logged (access lines, errors). */
  logs: string[];
  /** JSON in, { status, body, headers } out; `key: null` sends no Authorization. */
  api(method: string, path: string, options?: ApiOptions): Promise<ApiResponse>;
  /** POST /v1/sandboxes with the test labels; deleted after the file. */
  create(body?: Record<string, unknown>, key?: string): Promise<Record<string, unknown>>;
  /** Stops this server (the data dir stays) and starts a new one on it. */
  restart(): Promise<void>;
}

export interface ApiOptions {
  body?: unknown;
  /** A raw body (sent as is). */
  raw?: string | Uint8Array | ReadableStream<Uint8Array>;
  key?: string | null;
  headers?: Record<string, string>;
}

export interface ApiResponse {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are checked field by field
  body: any;
  text: string;
  headers: Headers;
}

export async function testServer(
  options: Partial<ServerConfig> & { kilnOptions?: KilnOptions } = {},
): Promise<TestServer> {
  const { kilnOptions, ...config } = options;
  const dataDir = config.dataDir ?? (await mkdtemp(join(tmpdir(), "kiln-server-test-")));
  const kiln = config.kiln ?? new Kiln({ image: inject("runtimeImage"), ...kilnOptions });
  const logs: string[] = [];
  const start = () => startServer({ port: 0, log: (l) => logs.push(l), ...config, dataDir, kiln });
  let server = await start();
  const key = config.adminKey ?? (server.createdAdminKey as string);
  const made: string[] = [];
  const t: TestServer = {
    get url() {
      return server.url;
    },
    key,
    dataDir,
    get server() {
      return server;
    },
    kiln,
    logs,
    async api(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const k = o.key === undefined ? key : o.key;
      if (k !== null) headers.authorization = `Bearer ${k}`;
      let body: string | Uint8Array | ReadableStream<Uint8Array> | undefined = o.raw;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
      const res = await fetch(`${server.url}${path}`, { method, headers, body, duplex: "half" } as RequestInit);
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    async create(body = {}, k) {
      const res = await t.api("POST", "/v1/sandboxes", {
        body: { ...body, labels: { ...TEST_LABELS, ...(body.labels as object) } },
        ...(k === undefined ? {} : { key: k }),
      });
      if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
      made.push(res.body.id);
      return res.body;
    },
    async restart() {
      await server.close();
      server = await start();
    },
  };
  const cleanup = async () => {
    await server.close();
    for (const id of made) await (await kiln.get(id).catch(() => undefined))?.delete().catch(() => {});
    if (!config.kiln) await kiln.close();
    if (!config.dataDir) await rm(dataDir, { recursive: true, force: true });
    const errors = logs.filter((l) => l.startsWith("error"));
    if (errors.length > 0) console.error(errors.join("\n"));
  };
  // Made inside a test: cleaned up when that test ends; made at file level: after the file.
  try {
    onTestFinished(cleanup);
  } catch {
    afterAll(cleanup);
  }
  return t;
}

/** Reads an SSE response into its JSON events. */
export async function sseEvents(res: Response): Promise<Record<string, unknown>[]> {
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

/**
 * Adds an organisation and a key to a server's store from outside (the keys and orgs routes
 * are issue 11's): the same SQLite file and server secret the server uses.
 */
export async function addOrgKey(
  dataDir: string,
  orgId: string,
  options: { scopes?: string[]; sandboxId?: string; databaseUrl?: string } = {},
): Promise<string> {
  const { openStore } = await import("../src/store/sql-store.ts");
  const { KeyHasher, loadSecret, newId, newKey, keyDisplayPrefix } = await import("../src/pipeline/keys.ts");
  const store = await openStore({ dataDir, ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}) });
  try {
    const hasher = new KeyHasher(await loadSecret(dataDir));
    const now = new Date().toISOString();
    if (!(await store.getOrg(orgId))) await store.createOrg({ id: orgId, name: orgId, quotas: {}, createdAt: now });
    const key = newKey();
    await store.createKey({
      id: newId("key"),
      orgId,
      name: "test",
      prefix: keyDisplayPrefix(key),
      hash: hasher.hash(key),
      scopes: options.scopes ?? ["*"],
      ...(options.sandboxId ? { sandboxId: options.sandboxId } : {}),
      createdAt: now,
    });
    return key;
  } finally {
    await store.close();
  }
}
