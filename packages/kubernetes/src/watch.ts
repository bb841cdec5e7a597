/**
 * Waiting on pods by watching them instead of polling: a wait costs one GET and one WATCH, and
 * sees a change as soon as the API server commits it (no poll interval in a claim's or a start's
 * latency). https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
 *
 * - `waitForPod`: one pod (fieldSelector metadata.name), from the resourceVersion of a fresh read;
 *   a dropped watch resumes from the last version seen; `410 Gone`/`Expired` (the version fell out
 *   of the API server's window) reads the pod again and watches from there.
 * - `PodInformer`: a label-selected set of pods kept current in memory (client-node's ListWatch:
 *   LIST, then WATCH from the list's resourceVersion, resuming after disconnects and relisting on
 *   410). ListWatch stops on any other error; the informer restarts it after a back-off.
 */
import { ListWatch, type V1Pod, Watch } from "@kubernetes/client-node";
import type { KubernetesEngine } from "./engine.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves with the first state of pod `name` (undefined: gone) for which `done` is true, or with
 * the last one seen when `timeoutMs` passes. `done(undefined)` decides what a missing pod means.
 */
export async function waitForPod(
  engine: KubernetesEngine,
  name: string,
  done: (pod: V1Pod | undefined) => boolean,
  timeoutMs: number,
): Promise<V1Pod | undefined> {
  const deadline = Date.now() + timeoutMs;
  const watch = new Watch(engine.kubeConfig);
  const path = `/api/v1/namespaces/${encodeURIComponent(engine.namespace)}/pods`;
  let last = await engine.readPod(name);
  if (done(last)) return last;
  let version = last?.metadata?.resourceVersion;
  let failures = 0;
  while (Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    let started: Promise<AbortController> | undefined;
    const outcome = await new Promise<"done" | "gone" | "ended" | "timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
      started = watch.watch(
        path,
        {
          fieldSelector: `metadata.name=${name}`,
          allowWatchBookmarks: true,
          ...(version ? { resourceVersion: version } : {}),
        },
        (type: string, obj: V1Pod & { code?: number }) => {
          if (type === "ERROR") {
            if (obj.code === 410) resolve("gone");
            return;
          }
          version = obj.metadata?.resourceVersion ?? version;
          if (type === "BOOKMARK") return;
          failures = 0;
          // readPod's view: a pod being deleted, or one no longer Kiln's, is gone.
          last =
            type === "DELETED" || obj.metadata?.deletionTimestamp || !obj.metadata?.labels?.["kiln.kind"]
              ? undefined
              : obj;
          if (done(last)) resolve("done");
        },
        (err: unknown) => {
          if ((err as { statusCode?: number } | null)?.statusCode === 410) resolve("gone");
          else {
            if (err) failures++;
            resolve("ended");
          }
        },
      );
      started.catch(() => resolve("ended"));
    });
    clearTimeout(timer);
    // Ends the stream whenever its request has connected (at once if it has).
    started?.then(
      (c) => c.abort(),
      () => {},
    );
    if (outcome === "done") return last;
    if (outcome === "timeout") break;
    // Expired, or the stream broke: read again (a change may have been missed) and watch from there.
    if (failures > 0) await sleep(Math.min(1_000, 50 * 2 ** failures));
    last = await engine.readPod(name);
    if (done(last)) return last;
    version = last?.metadata?.resourceVersion;
  }
  return last;
}

/** The pods matching a label selector, kept current by a watch; `onChange` runs on every change. */
export class PodInformer {
  readonly #lw: ListWatch<V1Pod>;
  #stopped = false;
  #synced = false;
  #lists = 0;
  #error: unknown;
  readonly #listeners = new Set<() => void>();

  constructor(engine: KubernetesEngine, labelSelector: string) {
    const path = `/api/v1/namespaces/${encodeURIComponent(engine.namespace)}/pods`;
    const watch = new Watch(engine.kubeConfig);
    this.#lw = new ListWatch<V1Pod>(
      path,
      // With bookmarks: a quiet selection's resourceVersion still advances, so a resume after a
      // disconnect stays inside the API server's window instead of relisting.
      // And none once stopped: ListWatch's delayed reconnect does not look at stop() again, and a
      // stop() while a watch is connecting cannot abort it (both would leak a watch).
      {
        watch: async (p, query, callback, done) => {
          if (this.#stopped) return new AbortController();
          const controller = await watch.watch(p, { ...query, allowWatchBookmarks: true }, callback, done);
          if (this.#stopped) controller.abort();
          return controller;
        },
      } as Watch,
      async () => {
        const list = await engine.core.listNamespacedPod({ namespace: engine.namespace, labelSelector });
        this.#synced = true;
        this.#lists++;
        this.#error = undefined;
        queueMicrotask(() => this.#emit());
        return list;
      },
      false,
      labelSelector,
    );
    const emit = () => this.#emit();
    this.#lw.on("add", emit);
    this.#lw.on("update", emit);
    this.#lw.on("delete", emit);
    this.#lw.on("error", (err: unknown) => {
      this.#error = err;
      this.#emit();
      this.#restart();
    });
  }

  /** Whether the first LIST has completed (until then `pods()` is empty, not authoritative). */
  get synced(): boolean {
    return this.#synced;
  }

  /** How many LISTs it made: one, and one more per 410 Expired (or a watch lost for good). */
  get lists(): number {
    return this.#lists;
  }

  /** The last failure of the LIST or the WATCH, cleared by the next successful LIST. */
  get error(): unknown {
    return this.#error;
  }

  start(): void {
    this.#lw.start().catch((err: unknown) => {
      this.#error = err;
      this.#restart();
    });
  }

  #restart(): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      if (!this.#stopped) this.start();
    }, 1_000);
    timer.unref();
  }

  /** The cached pods, not being deleted. */
  pods(): V1Pod[] {
    return this.#lw.list().filter((p) => !p.metadata?.deletionTimestamp);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(): void {
    for (const l of [...this.#listeners]) l();
  }

  stop(): void {
    this.#stopped = true;
    void this.#lw.stop();
    this.#emit();
  }
}
