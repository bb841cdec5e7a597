// Test helpers: a sim per test file, the real client-node's clients on its kubeconfig, and a
// one-shot exec that collects stdout, stderr and the final Status.
import { resolve } from "node:path";
import { PassThrough, Readable } from "node:stream";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  Exec,
  KubeConfig,
  NetworkingV1Api,
  type V1Pod,
  type V1Status,
} from "@kubernetes/client-node";
// Not re-exported by the package's index; the class Exec uses by default.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import { inject } from "vitest";
import WebSocket from "ws";
import { type KubeSim, type KubeSimOptions, startKubeSim } from "../src/index.ts";

export const runtimeImage = () => inject("runtimeImage");

export interface Cluster {
  sim: KubeSim;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  net: NetworkingV1Api;
}

/** The owner label of this checkout's test sims (global-setup.ts sweeps crashed runs' leftovers). */
export const TEST_OWNER = `kube-sim-tests:${resolve(import.meta.dirname, "..")}`;

export async function cluster(opts?: KubeSimOptions): Promise<Cluster> {
  const sim = await startKubeSim({ owner: TEST_OWNER, ...opts });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig);
  return {
    sim,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    net: kc.makeApiClient(NetworkingV1Api),
  };
}

/** A pod that runs the runtime image's tini with `sleep infinity` (so SIGTERM ends it at once). */
export function sleeperPod(
  name: string,
  extra: { labels?: Record<string, string>; spec?: Partial<V1Pod["spec"]> } = {},
): V1Pod {
  return {
    metadata: { name, labels: extra.labels },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 5,
      containers: [{ name: "main", image: runtimeImage(), args: ["sleep", "infinity"] }],
      ...(extra.spec ?? {}),
    } as V1Pod["spec"],
  };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const isReady = (p: V1Pod) =>
  p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

export async function waitReady(c: Cluster, name: string, namespace = "default"): Promise<V1Pod> {
  return waitFor(`pod ${name} Ready`, async () => {
    const p = await c.core.readNamespacedPod({ name, namespace });
    return isReady(p) ? p : undefined;
  });
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  status: V1Status;
  protocol: string;
}

/**
 * Runs a command through client-node's Exec. `protocol` "v4" restricts the offered subprotocols
 * to v4.channel.k8s.io (client-node's own WebSocketHandler with a socket factory), as an older
 * server would negotiate.
 */
export async function exec(
  c: Cluster,
  pod: string,
  command: string[],
  o: { stdin?: string; protocol?: "v4" | "v5"; namespace?: string } = {},
): Promise<ExecResult> {
  const handler =
    o.protocol === "v4"
      ? new WebSocketHandler(c.kc, (uri, _protocols, opts) => new WebSocket(uri, ["v4.channel.k8s.io"], opts) as never)
      : undefined;
  const ex = new Exec(c.kc, handler);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (b: Buffer) => out.push(b));
  stderr.on("data", (b: Buffer) => err.push(b));
  const stdin = o.stdin === undefined ? null : Readable.from([Buffer.from(o.stdin)]);
  let resolveStatus!: (s: V1Status) => void;
  const status = new Promise<V1Status>((r) => {
    resolveStatus = r;
  });
  const ws = await ex.exec(o.namespace ?? "default", pod, "main", command, stdout, stderr, stdin, false, (s) =>
    resolveStatus(s),
  );
  const closed = new Promise<void>((r) => ws.on("close", () => r()));
  const s = await Promise.race([
    status,
    closed.then(
      () => new Promise<V1Status>((r) => setTimeout(() => r({ status: "closed-without-status" } as V1Status), 200)),
    ),
  ]);
  return {
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
    status: s,
    protocol: ws.protocol,
  };
}

/** The HTTP status code and Status body of a failed client-node call. */
export async function failure(p: Promise<unknown>): Promise<{ code: number; body: V1Status }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === "string" ? JSON.parse(err.body) : err.body;
      return { code: err.code, body };
    }
    throw err;
  }
  throw new Error("expected the call to fail");
}
