/**
 * @kiln/kube-sim: a test-only Kubernetes API server for the Kubernetes engine's tests. It serves
 * the subset of the API a pod-per-sandbox engine uses (see README.md) over HTTPS on 127.0.0.1,
 * faithfully enough that the real `@kubernetes/client-node` works against it unchanged, and runs
 * every Pod as a real Docker container.
 *
 *   const sim = await startKubeSim();
 *   const kc = new KubeConfig(); kc.loadFromString(sim.kubeconfig);
 *   ...
 *   await sim.close(); // removes every container and network it made
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { Api } from "./api.ts";
import { Kubelet, SIM_LABEL } from "./kubelet.ts";
import { ReplicaSetController } from "./replicasets.ts";
import { findResource } from "./resources.ts";
import { Handler } from "./server.ts";
import { Storage } from "./storage.ts";
import { Store } from "./store.ts";

export { SIM_LABEL } from "./kubelet.ts";

export interface KubeSimOptions {
  /** Docker connection (default: dockerode's defaults, i.e. DOCKER_HOST or the local socket). */
  docker?: Docker;
  /** Serve plain HTTP (the kubeconfig then sets insecure-skip-tls-verify, which client-node requires for http). Default false: HTTPS with a fresh self-signed certificate. */
  http?: boolean;
  /** RuntimeClasses the cluster has: name -> handler (a Docker runtime). Default `{ gvisor: "runsc" }`. */
  runtimeClasses?: Record<string, string>;
  /** Namespaces that exist from the start besides default, kube-system, kube-public. */
  namespaces?: string[];
  /** The pids limit of every pod (the kubelet's --pod-max-pids). Default 4096. */
  podPidsLimit?: number;
  /** How many changes a watch can resume across; older resourceVersions get 410 Expired. Default 20,000. */
  watchHistory?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 10 s. */
  bookmarkMs?: number;
  /**
   * Marks every Docker object of this sim with `kiln.kube-sim.owner=<owner>` and the process id,
   * so `sweepKubeSims(owner)` can remove what a crashed run of the same owner left behind.
   */
  owner?: string;
  log?: (line: string) => void;
}

export interface KubeSim {
  /** The API server's URL, e.g. https://127.0.0.1:41234 */
  url: string;
  /** The bearer token the kubeconfig carries. */
  token: string;
  /** A kubeconfig (YAML) for this server: cluster, user with the token, current context. */
  kubeconfig: string;
  /** The per-instance id every Docker object of this sim is labelled with (`kiln.kube-sim=<id>`). */
  id: string;
  writeKubeconfig(path: string): Promise<void>;
  /** Stops serving and removes every container and network this sim created. */
  close(): Promise<void>;
}

const run = promisify(execFile);

/** A self-signed certificate (CA:TRUE, SAN 127.0.0.1 and localhost) made with openssl. */
async function selfSigned(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), "kube-sim-"));
  try {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=kube-sim",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ]);
    return { key: await readFile(join(dir, "key.pem"), "utf8"), cert: await readFile(join(dir, "cert.pem"), "utf8") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startKubeSim(opts: KubeSimOptions = {}): Promise<KubeSim> {
  const docker = opts.docker ?? new Docker();
  const log = opts.log ?? (() => {});
  const id = randomBytes(4).toString("hex");
  const token = randomBytes(24).toString("base64url");
  const runtimeClasses = opts.runtimeClasses ?? { gvisor: "runsc" };
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  const network = `kube-sim-${id}`;
  const ownerLabels: Record<string, string> =
    opts.owner === undefined
      ? {}
      : { [`${SIM_LABEL}.owner`]: opts.owner, [`${SIM_LABEL}.pid`]: `${hostname()}/${process.pid}` };
  await docker.createNetwork({ Name: network, Driver: "bridge", Labels: { [SIM_LABEL]: id, ...ownerLabels } });

  const store = new Store(opts.watchHistory);
  const api = new Api(store);
  const kubelet = new Kubelet(api, docker, {
    simId: id,
    network,
    runtimeHandlers: runtimeClasses,
    dockerRuntimes: new Set(Object.keys(info.Runtimes ?? {})),
    podPidsLimit: opts.podPidsLimit ?? 4096,
    extraLabels: ownerLabels,
    log,
  });
  const replicasets = new ReplicaSetController(api, log);
  const storage = new Storage(api, docker, id, ownerLabels, log);
  kubelet.storage = storage;
  api.hooks = {
    runtimeClass: (name) => store.get("runtimeclasses", undefined, name),
    deletePod: (pod, grace) => kubelet.deletePod(pod, grace),
    afterReplicaSetDelete: (rs, policy) => replicasets.afterDelete(rs, policy),
    deleteClaim: (pvc) => storage.deleteClaim(pvc),
    afterNamespaceDelete: (ns) => {
      // https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/: deleting a
      // namespace deletes everything in it.
      for (const plural of ["replicasets", "pods", "networkpolicies", "events", "persistentvolumeclaims"]) {
        for (const o of store.list(plural, ns)) {
          if (plural === "pods") kubelet.deletePod(o, 0);
          else store.remove(plural, ns, o.metadata.name);
        }
      }
    },
  };
  for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease", ...(opts.namespaces ?? [])]) {
    api.create(findResource("", "v1", "namespaces")!, undefined, { metadata: { name: ns } });
  }
  // https://kubernetes.io/docs/concepts/containers/runtime-class/
  for (const [name, handler] of Object.entries(runtimeClasses)) {
    store.create("runtimeclasses", { apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name }, handler });
  }

  let server: Server;
  const plain = opts.http === true;
  const tls = plain ? undefined : await selfSigned();
  const handler = new Handler({
    api,
    kubelet,
    docker,
    token,
    address: () => `127.0.0.1:${(server.address() as AddressInfo).port}`,
    bookmarkMs: opts.bookmarkMs ?? 10_000,
    log,
  });
  const onRequest = (req: Parameters<Handler["request"]>[0], res: Parameters<Handler["request"]>[1]) =>
    void handler.request(req, res);
  server = plain ? createHttpServer(onRequest) : createHttpsServer({ key: tls!.key, cert: tls!.cert }, onRequest);
  server.on("upgrade", (req, socket, head) => handler.upgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const url = `${plain ? "http" : "https"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfig = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: kube-sim",
    "    cluster:",
    `      server: ${url}`,
    plain
      ? "      insecure-skip-tls-verify: true"
      : `      certificate-authority-data: ${Buffer.from(tls!.cert).toString("base64")}`,
    "users:",
    "  - name: kube-sim",
    "    user:",
    `      token: ${token}`,
    "contexts:",
    "  - name: kube-sim",
    "    context:",
    "      cluster: kube-sim",
    "      user: kube-sim",
    "      namespace: default",
    "current-context: kube-sim",
    "",
  ].join("\n");

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      handler.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      replicasets.close();
      storage.close();
      await kubelet.close();
      const mine = await docker.listContainers({ all: true, filters: { label: [`${SIM_LABEL}=${id}`] } });
      await Promise.all(
        mine.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true, v: true })
            .catch(() => {}),
        ),
      );
      await kubelet.settle();
      // A create that was in flight may have made one more container meanwhile.
      const late = await docker.listContainers({ all: true, filters: { label: [`${SIM_LABEL}=${id}`] } });
      await Promise.all(
        late.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true, v: true })
            .catch(() => {}),
        ),
      );
      await docker
        .getNetwork(network)
        .remove()
        .catch(() => {});
      await storage.settle(2_000);
      for (const v of (await docker.listVolumes({ filters: { label: [`${SIM_LABEL}=${id}`] } })).Volumes ?? []) {
        await docker
          .getVolume(v.Name)
          .remove()
          .catch(() => {});
      }
    })());

  return {
    url,
    token,
    kubeconfig,
    id,
    writeKubeconfig: (path) => writeFile(path, kubeconfig, { mode: 0o600 }),
    close,
  };
}

/**
 * Removes the containers and networks of sims started with `owner` whose process is gone (a run
 * that crashed before close()). Objects of other owners, and of live processes, are left alone.
 */
export async function sweepKubeSims(owner: string, docker: Docker = new Docker()): Promise<number> {
  const filters = { label: [`${SIM_LABEL}.owner=${owner}`] };
  const dead = (labels: Record<string, string> | undefined) => {
    const [host, pid] = (labels?.[`${SIM_LABEL}.pid`] ?? "").split("/");
    if (host !== hostname() || !pid) return false;
    try {
      process.kill(Number(pid), 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ESRCH";
    }
  };
  let removed = 0;
  for (const c of await docker.listContainers({ all: true, filters })) {
    if (!dead(c.Labels)) continue;
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
    removed++;
  }
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) {
    if (!dead(v.Labels)) continue;
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
    removed++;
  }
  for (const n of await docker.listNetworks({ filters })) {
    if (!dead(n.Labels)) continue;
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
    removed++;
  }
  return removed;
}
