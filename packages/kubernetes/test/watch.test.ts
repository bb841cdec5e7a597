// Watches instead of polling (src/watch.ts), against kube-sim through a TCP relay this test can
// cut: a wait resumes from its resourceVersion after the stream breaks, and a watch whose version
// fell out of the API server's window (410 Expired) lists again.
import { createServer, type Server, Socket } from "node:net";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesEngine } from "../src/engine.ts";
import { PodInformer, waitForPod } from "../src/watch.ts";
import { runtimeImage } from "./image.ts";

const NAMESPACE = "kiln-watch-test";
let sim: KubeSim;
let relay: Relay;
let engine: KubernetesEngine;
let core: CoreV1Api;
let image: string;

/** A TCP relay to the sim: cut() ends every connection, pause() refuses new ones until resume(). */
class Relay {
  readonly server: Server;
  readonly #sockets = new Set<Socket>();
  #paused = false;
  constructor(target: URL) {
    this.server = createServer((client) => {
      if (this.#paused) {
        client.destroy();
        return;
      }
      const upstream = new Socket();
      upstream.connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    return (this.server.address() as { port: number }).port;
  }
  cut(): void {
    for (const s of this.#sockets) s.destroy();
  }
  /** Connections open now (each counted once, by its client side). */
  get open(): number {
    return Math.floor(this.#sockets.size / 2);
  }
  pause(): void {
    this.#paused = true;
    this.cut();
  }
  resume(): void {
    this.#paused = false;
  }
  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

beforeAll(async () => {
  image = await runtimeImage();
  // A window of 40 changes: a watch that was away for more has to list again (410 Expired).
  sim = await startKubeSim({ namespaces: [NAMESPACE], watchHistory: 40 });
  relay = new Relay(new URL(sim.url));
  const port = await relay.listen();
  const kubeconfig = sim.kubeconfig.replace(sim.url, `https://127.0.0.1:${port}`);
  engine = new KubernetesEngine({ kubeconfig, namespace: NAMESPACE, networkPolicy: "enforced" });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  engine?.dispose();
  await relay?.close();
  await sim?.close();
});

const pod = (name: string, labels: Record<string, string>): V1Pod => ({
  metadata: { name, labels },
  spec: {
    restartPolicy: "Never",
    terminationGracePeriodSeconds: 0,
    containers: [{ name: "sandbox", image, command: ["sleep", "300"] }],
  },
});

const annotate = (name: string, value: string) =>
  core.patchNamespacedPod(
    { name, namespace: NAMESPACE, body: { metadata: { annotations: { mark: value } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );

describe("waitForPod", () => {
  it("sees the change it waits for at once, and resumes after the stream breaks", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("w1", { "kiln.kind": "sandbox" }) });
    const running = await waitForPod(engine, "w1", (p) => p?.status?.phase === "Running", 60_000);
    expect(running?.status?.phase).toBe("Running");
    // Wait for an annotation; break the stream meanwhile (and several times).
    const seen = waitForPod(engine, "w1", (p) => p?.metadata?.annotations?.mark === "3", 30_000);
    await new Promise((r) => setTimeout(r, 200));
    relay.cut();
    await annotate("w1", "1");
    relay.cut();
    await annotate("w1", "2");
    await annotate("w1", "3");
    const t = Date.now();
    expect((await seen)?.metadata?.annotations?.mark).toBe("3");
    expect(Date.now() - t).toBeLessThan(15_000);
    // A pod that goes: the wait reports it gone.
    const gone = waitForPod(engine, "w1", (p) => p === undefined, 30_000);
    await core.deleteNamespacedPod({ name: "w1", namespace: NAMESPACE, gracePeriodSeconds: 0 });
    expect(await gone).toBeUndefined();
  });

  it("gives up at its timeout with the last state seen", async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("w2", { "kiln.kind": "sandbox" }) });
    const t = Date.now();
    const last = await waitForPod(engine, "w2", (p) => p?.metadata?.annotations?.mark === "never", 1_500);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1_400);
    expect(last?.metadata?.name).toBe("w2");
    await core.deleteNamespacedPod({ name: "w2", namespace: NAMESPACE, gracePeriodSeconds: 0 });
  });
});

describe("PodInformer", () => {
  it("keeps a selected set current; after a disconnect longer than the API server's window it lists again (410)", async () => {
    const informer = new PodInformer(engine, "group=inf");
    let changes = 0;
    informer.onChange(() => changes++);
    informer.start();
    try {
      await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("i1", { group: "inf" }) });
      await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("other", { group: "else" }) });
      await expect.poll(() => informer.pods().map((p) => p.metadata?.name), { timeout: 20_000 }).toEqual(["i1"]);
      expect(informer.synced).toBe(true);
      expect(changes).toBeGreaterThan(0);
      // Resuming after a short break needs no list.
      relay.cut();
      await annotate("i1", "after-cut");
      await expect
        .poll(() => informer.pods()[0]?.metadata?.annotations?.mark, { timeout: 20_000, interval: 100 })
        .toBe("after-cut");
      expect(informer.lists).toBe(1);

      // Away for more than 40 changes: resuming from its version is 410 Expired; it relists.
      relay.pause();
      for (let i = 0; i < 25; i++) await annotate("other", String(i));
      await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("i2", { group: "inf" }) });
      await core.deleteNamespacedPod({ name: "i1", namespace: NAMESPACE, gracePeriodSeconds: 0 });
      for (let i = 0; i < 25; i++) await annotate("other", `again-${i}`);
      relay.resume();
      await expect
        .poll(() => informer.pods().map((p) => p.metadata?.name), { timeout: 30_000, interval: 200 })
        .toEqual(["i2"]);
      expect(informer.lists).toBe(2);
      // And it keeps watching from the new list.
      await core.createNamespacedPod({ namespace: NAMESPACE, body: pod("i3", { group: "inf" }) });
      await expect
        .poll(
          () =>
            informer
              .pods()
              .map((p) => p.metadata?.name)
              .sort(),
          { timeout: 30_000, interval: 200 },
        )
        .toEqual(["i2", "i3"]);
    } finally {
      informer.stop();
      relay.resume();
    }
  });

  it("stop() after its stream broke leaves no watch behind (no restart after stop)", async () => {
    const informer = new PodInformer(engine, "group=leak");
    informer.start();
    await expect.poll(() => informer.synced, { timeout: 20_000 }).toBe(true);
    // A broken stream is an error for ListWatch, which the informer answers with a restart 1 s later.
    relay.cut();
    await new Promise((r) => setTimeout(r, 100));
    informer.stop();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(relay.open).toBe(0);
  });
});
