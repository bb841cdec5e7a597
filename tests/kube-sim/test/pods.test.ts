// Pods through the real client-node: create -> Ready with a real container, exec over v5 and v4
// (stdout, stderr, exit status, stdin), list by selectors, delete removes the container, and
// bearer-token authentication.

import { spawn } from "node:child_process";
import https from "node:https";
import { resolve } from "node:path";
import { PassThrough } from "node:stream";
import { CoreV1Api, KubeConfig, type V1Status } from "@kubernetes/client-node";
// Not re-exported by the package's index; the class Exec uses by default.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIM_LABEL, sweepKubeSims } from "../src/index.ts";
import { type Cluster, cluster, exec, failure, runtimeImage, sleeperPod, waitFor, waitReady } from "./helpers.ts";

const docker = new Docker();
let c: Cluster;

beforeAll(async () => {
  c = await cluster();
});
afterAll(async () => {
  await c?.sim.close();
});

describe("pods", () => {
  it("creates a pod that becomes Running and Ready, with a uid, resourceVersion, podIP and a real container", async () => {
    const created = await c.core.createNamespacedPod({
      namespace: "default",
      body: sleeperPod("ready-1", { labels: { app: "a" } }),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.status?.phase).toBe("Pending");
    const pod = await waitReady(c, "ready-1");
    expect(pod.status?.phase).toBe("Running");
    expect(pod.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(pod.spec?.nodeName).toBe("kube-sim");
    expect(pod.metadata?.labels).toEqual({ app: "a" });
    const id = pod.status?.containerStatuses?.[0]?.containerID?.replace("docker://", "");
    const info = await docker.getContainer(id!).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels[SIM_LABEL]).toBe(c.sim.id);
  });

  it("generateName gives a fresh name; invalid pods are 422 with field causes", async () => {
    const made = await c.core.createNamespacedPod({
      namespace: "default",
      body: { ...sleeperPod(""), metadata: { generateName: "gen-" } },
    });
    expect(made.metadata?.name).toMatch(/^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const bad = await failure(
      c.core.createNamespacedPod({
        namespace: "default",
        body: { metadata: { name: "Bad_Name" }, spec: { containers: [{ name: "x" }] } } as never,
      }),
    );
    expect(bad.code).toBe(422);
    expect(bad.body.reason).toBe("Invalid");
    expect(bad.body.details?.causes?.map((x) => x.field)).toEqual(
      expect.arrayContaining(["metadata.name", "spec.containers[0].image"]),
    );
    const init = await failure(
      c.core.createNamespacedPod({
        namespace: "default",
        body: sleeperPod("init-1", { spec: { initContainers: [{ name: "i", image: runtimeImage() }] } }),
      }),
    );
    expect(init.code).toBe(422);
    expect(init.body.message).toContain("kube-sim does not run initContainers");
    const dup = await failure(
      c.core.createNamespacedPod({ namespace: "default", body: sleeperPod(made.metadata!.name!) }),
    );
    expect(dup.code).toBe(409);
    expect(dup.body.reason).toBe("AlreadyExists");
    const noNs = await failure(c.core.createNamespacedPod({ namespace: "nope", body: sleeperPod("x") }));
    expect(noNs.code).toBe(404);
    await c.core.deleteNamespacedPod({ name: made.metadata!.name!, namespace: "default", gracePeriodSeconds: 0 });
  });

  it("execs `echo hi` over v5 and over v4, with stdout, stderr and the exit status", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("exec-1") });
    await waitReady(c, "exec-1");
    for (const protocol of ["v5", "v4"] as const) {
      const ok = await exec(c, "exec-1", ["echo", "hi"], { protocol });
      expect(ok.protocol).toBe(`${protocol}.channel.k8s.io`);
      expect(ok.stdout).toBe("hi\n");
      expect(ok.status.status).toBe("Success");
      const bad = await exec(c, "exec-1", ["sh", "-c", "echo oops >&2; exit 3"], { protocol });
      expect(bad.stderr).toBe("oops\n");
      expect(bad.status.status).toBe("Failure");
      expect(bad.status.reason).toBe("NonZeroExitCode");
      expect(bad.status.details?.causes?.[0]).toEqual({ reason: "ExitCode", message: "3" });
    }
    // The process runs as the image's user, in the pod's container.
    expect((await exec(c, "exec-1", ["id", "-un"])).stdout).toBe("kiln\n");
  });

  it("round-trips stdin over v5 (the close message ends the process's stdin)", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("stdin-1") });
    await waitReady(c, "stdin-1");
    const r = await exec(c, "stdin-1", ["sh", "-c", "tr a-z A-Z; echo done"], { stdin: "hello kube\n" });
    expect(r.stdout).toBe("HELLO KUBE\ndone\n");
    expect(r.status.status).toBe("Success");
  });

  it("holds stdin back while the process does not read it (backpressure), and delivers all of it", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("stdin-2") });
    await waitReady(c, "stdin-2");
    const query = new URLSearchParams({ stdin: "true", stdout: "true", stderr: "true", container: "main" });
    for (const arg of ["sh", "-c", "sleep 3; wc -c"]) query.append("command", arg);
    let out = "";
    let opened!: () => void;
    const open = new Promise<void>((r) => {
      opened = r;
    });
    const ws = await new WebSocketHandler(c.kc).connect(
      `/api/v1/namespaces/default/pods/stdin-2/exec?${query}`,
      null,
      (channel: number, data: Buffer) => {
        opened();
        if (channel === 1) out += data.toString();
        return true;
      },
    );
    const closed = new Promise<void>((r) => ws.on("close", () => r()));
    await open;
    const started = Date.now();
    const size = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024 + 1, 0x61);
    chunk[0] = 0; // channel 0: stdin
    for (let sent = 0; sent < size; sent += chunk.length - 1)
      await new Promise<void>((resolve, reject) => ws.send(chunk, (err) => (err ? reject(err) : resolve())));
    // The process reads nothing for 3 s: the sends can only have completed once it did (the
    // socket buffers between client, sim and Docker hold a few MiB, not 32).
    expect(Date.now() - started).toBeGreaterThan(1500);
    ws.send(Buffer.from([255, 0])); // v5: close stdin
    await closed;
    expect(out.trim()).toBe(String(Math.ceil(size / (chunk.length - 1)) * (chunk.length - 1)));
  });

  it("execs with a tty: one output stream, and the terminal size from client-node's resize channel", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("tty-1") });
    await waitReady(c, "tty-1");
    const { Exec } = await import("@kubernetes/client-node");
    const out = Object.assign(new PassThrough(), { rows: 33, columns: 101 });
    let text = "";
    out.on("data", (b: Buffer) => {
      text += b.toString();
    });
    const status = await new Promise<V1Status>((resolve, reject) => {
      new Exec(c.kc)
        .exec(
          "default",
          "tty-1",
          "main",
          ["sh", "-c", "sleep 0.5; stty size; echo err >&2"],
          out,
          null,
          null,
          true,
          resolve,
        )
        .catch(reject);
    });
    expect(status.status).toBe("Success");
    expect(text.replace(/\r/g, "")).toBe("33 101\nerr\n");
  });

  it("refuses exec into a missing pod (404) and into a pod that has completed (400)", async () => {
    const missing = (await exec(c, "missing-pod", ["true"]).catch((err) => err)) as { message?: string };
    expect(String(missing.message)).toContain("Unexpected server response: 404");
    await c.core.createNamespacedPod({
      namespace: "default",
      body: sleeperPod("done-1", {
        spec: { containers: [{ name: "main", image: sleeperPod("x").spec!.containers[0]!.image, args: ["true"] }] },
      }),
    });
    const done = await waitFor("pod Succeeded", async () => {
      const p = await c.core.readNamespacedPod({ name: "done-1", namespace: "default" });
      return p.status?.phase === "Succeeded" ? p : undefined;
    });
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    const refused = (await exec(c, "done-1", ["true"]).catch((err) => err)) as { message?: string };
    expect(String(refused.message)).toContain("Unexpected server response: 400");
  });

  it("lists by label selector (equality, in, notin, exists, !key) and field selector", async () => {
    const mk = (name: string, labels: Record<string, string>) =>
      c.core.createNamespacedPod({ namespace: "default", body: sleeperPod(name, { labels }) });
    await mk("sel-a", { tier: "web", env: "prod" });
    await mk("sel-b", { tier: "db", env: "dev" });
    await mk("sel-c", { tier: "web" });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await c.core.listNamespacedPod({ namespace: "default", labelSelector, fieldSelector })).items
        .map((p) => p.metadata!.name!)
        .filter((n) => n.startsWith("sel-"))
        .sort();
    expect(await names("tier=web")).toEqual(["sel-a", "sel-c"]);
    expect(await names("tier!=web")).toEqual(["sel-b"]);
    expect(await names("env in (prod,dev)")).toEqual(["sel-a", "sel-b"]);
    expect(await names("env notin (prod)")).toEqual(["sel-b", "sel-c"]);
    expect(await names("env")).toEqual(["sel-a", "sel-b"]);
    expect(await names("!env")).toEqual(["sel-c"]);
    expect(await names("tier=web,env=prod")).toEqual(["sel-a"]);
    expect(await names(undefined, "metadata.name=sel-b")).toEqual(["sel-b"]);
    await waitReady(c, "sel-a");
    await waitReady(c, "sel-b");
    await waitReady(c, "sel-c");
    expect(await names("tier=web", "status.phase=Running")).toEqual(["sel-a", "sel-c"]);
    expect(await names(undefined, "status.phase=Pending")).toEqual([]);
    const list = await c.core.listNamespacedPod({ namespace: "default" });
    expect(list.metadata?.resourceVersion).toMatch(/^\d+$/);
  });

  it("delete stops and removes the container, then the pod is gone (404)", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("del-1") });
    const pod = await waitReady(c, "del-1");
    const id = pod.status!.containerStatuses![0]!.containerID!.replace("docker://", "");
    const deleting = await c.core.deleteNamespacedPod({ name: "del-1", namespace: "default" });
    expect(deleting.metadata?.deletionTimestamp).toBeDefined();
    await waitFor(
      "pod gone",
      async () => (await failure(c.core.readNamespacedPod({ name: "del-1", namespace: "default" }))).code === 404,
    );
    await waitFor(
      "container removed",
      async () =>
        (await docker
          .getContainer(id)
          .inspect()
          .catch(() => undefined)) === undefined,
    );
  });

  it("a force delete (grace 0) frees the name at once: the pod can be created again under it", async () => {
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("reuse-1") });
    const first = await waitReady(c, "reuse-1");
    await c.core.deleteNamespacedPod({ name: "reuse-1", namespace: "default", gracePeriodSeconds: 0 });
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("reuse-1") });
    const second = await waitReady(c, "reuse-1");
    expect(second.metadata?.uid).not.toBe(first.metadata?.uid);
    expect((await exec(c, "reuse-1", ["echo", "again"])).stdout).toBe("again\n");
  });

  it("deletes a collection by label selector", async () => {
    for (const n of ["coll-1", "coll-2"])
      await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod(n, { labels: { coll: "x" } }) });
    await c.core.createNamespacedPod({ namespace: "default", body: sleeperPod("coll-3") });
    await c.core.deleteCollectionNamespacedPod({
      namespace: "default",
      labelSelector: "coll=x",
      gracePeriodSeconds: 0,
    });
    const left = (await c.core.listNamespacedPod({ namespace: "default" })).items
      .map((p) => p.metadata?.name)
      .filter((n) => n?.startsWith("coll-"));
    expect(left).toEqual(["coll-3"]);
  });

  it("logs: the container's output", async () => {
    await c.core.createNamespacedPod({
      namespace: "default",
      body: sleeperPod("log-1", {
        spec: {
          containers: [
            {
              name: "main",
              image: sleeperPod("x").spec!.containers[0]!.image,
              args: ["sh", "-c", "echo line1; sleep 0.3; echo line2 >&2; sleep infinity"],
            },
          ],
        },
      }),
    });
    await waitReady(c, "log-1");
    const text = await waitFor("logs", async () => {
      const t = await c.core.readNamespacedPodLog({ name: "log-1", namespace: "default" });
      return t.includes("line2") ? t : undefined;
    });
    expect(text).toBe("line1\nline2\n");
  });
});

describe("authentication", () => {
  it("answers a missing or wrong token with 401 and a Status", async () => {
    const kc = new KubeConfig();
    kc.loadFromString(c.sim.kubeconfig.replace(c.sim.token, "wrong-token"));
    const bad = await failure(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }));
    expect(bad.code).toBe(401);
    // client-node drops the body of a 401; read it with a plain HTTPS request (the sim's CA).
    const ca = Buffer.from(c.kc.getCurrentCluster()!.caData!, "base64");
    for (const headers of [{}, { Authorization: "Bearer wrong-token" }]) {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        https
          .get(`${c.sim.url}/api/v1/namespaces/default/pods`, { ca, headers }, (res) => {
            let text = "";
            res.on("data", (d) => {
              text += d;
            });
            res.on("end", () => resolve({ status: res.statusCode!, body: text }));
          })
          .on("error", reject);
      });
      expect(status).toBe(401);
      expect(JSON.parse(body)).toMatchObject({
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Unauthorized",
        code: 401,
      });
    }
  });
});

describe("close", () => {
  it("removes every container and the network the sim made, and nothing else", async () => {
    const other = await cluster();
    const bystander = await docker.createContainer({
      Image: runtimeImage(),
      Cmd: ["true"],
      Labels: { [SIM_LABEL]: "someone-else" },
    });
    try {
      await other.core.createNamespacedPod({ namespace: "default", body: sleeperPod("c-1") });
      await other.core.createNamespacedPod({ namespace: "default", body: sleeperPod("c-2") });
      await waitReady(other, "c-1");
      const mine = () => docker.listContainers({ all: true, filters: { label: [`${SIM_LABEL}=${other.sim.id}`] } });
      expect((await mine()).length).toBeGreaterThanOrEqual(1);
      await other.sim.close();
      expect(await mine()).toHaveLength(0);
      expect(await docker.listNetworks({ filters: { label: [`${SIM_LABEL}=${other.sim.id}`] } })).toHaveLength(0);
      expect((await bystander.inspect()).Id).toBe(bystander.id);
    } finally {
      await other.sim.close();
      await bystander.remove({ force: true });
    }
  });

  it("sweepKubeSims removes what a killed run of the same owner left behind, and only that", async () => {
    const owner = `sweep-test-${process.pid}`;
    const child = spawn(
      process.execPath,
      [resolve(import.meta.dirname, "fixtures/crash-sim.ts"), owner, runtimeImage()],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const id = await new Promise<string>((ok, fail) => {
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("\n")) ok(out.trim());
      });
      child.on("exit", (code) => fail(new Error(`child exited ${code}`)));
    });
    const objects = async () => [
      ...(await docker.listContainers({ all: true, filters: { label: [`${SIM_LABEL}=${id}`] } })),
      ...(await docker.listNetworks({ filters: { label: [`${SIM_LABEL}=${id}`] } })),
    ];
    expect((await objects()).length).toBe(2);
    // Alive: nothing is swept.
    expect(await sweepKubeSims(owner)).toBe(0);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(await sweepKubeSims("some-other-owner")).toBe(0);
    expect(await sweepKubeSims(owner)).toBe(2);
    expect(await objects()).toEqual([]);
  });
});
