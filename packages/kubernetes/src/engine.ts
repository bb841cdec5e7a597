/**
 * The Kubernetes implementation of core's Engine: a sandbox is one Pod, a warm pool is a
 * ReplicaSet per shape (pool.ts), network modes are NetworkPolicies (manifests.ts), the agent
 * channel is one long-lived pods/exec WebSocket per sandbox (exec.ts). All of Kiln's state is
 * in the pods' labels and annotations, so any Kiln instance serves any sandbox.
 *
 * What Kubernetes cannot do that Docker can, and what this engine does instead:
 * - a finished Pod never runs again (restartPolicy Never, and a Pod's containers cannot be
 *   restarted through the API): stop() keeps /workspace in a PVC and ends the pod, start() makes
 *   a new pod with the same identity (persistence.ts);
 * - pods run as the runtime image's user (runAsNonRoot), so files go in as that user, and
 *   /etc/kiln's files (the record, env and agent settings core writes) become annotations;
 * - images are built by another engine (the local Docker engine by default) and pulled by the
 *   cluster from `imageRegistry`;
 * - volumes are PersistentVolumeClaims (persistence.ts); snapshots by commit are not offered
 *   (NotSupportedError): snapshots use the engine-neutral format in snapshots.ts.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  ConflictError,
  EngineError,
  EngineUnavailableError,
  InvalidArgumentError,
  KilnError,
  type NetworkDecision,
  NotSupportedError,
  SandboxNotFoundError,
} from "@kiln/core";
import {
  type ContainerDetails,
  type ContainerSpec,
  type ContainerStatus,
  type ContainerSummary,
  DockerEngine,
  type Engine,
  type EngineInfo,
  type EngineWarmPool,
  type ImageSummary,
  LABEL,
  type ProcessChannel,
  type VolumeSummary,
} from "@kiln/core/engine";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  VersionApi,
} from "@kubernetes/client-node";
import { extract, pack } from "tar-stream";
import { EgressProxy, PROXY_ANNOTATION, PROXY_POD_LABELS, PROXY_PORT, refuseModeSwitch } from "./egress-proxy.ts";
import { type ExecTarget, openExecChannel, runExec } from "./exec.ts";
import {
  AGENT_SOCKET,
  ANNOTATION,
  CONTAINER,
  K8S_LABEL,
  nameHash,
  networkMode,
  networkPolicies,
  type PodOptions,
  podLabels,
  sandboxPod,
  validLabel,
} from "./manifests.ts";
import type { KubernetesEngineOptions } from "./options.ts";
import { Persistence, WORKSPACE_LABEL } from "./persistence.ts";
import { HOLDERS, type Holders, KubePool, updateHolders } from "./pool.ts";
import { waitForPod } from "./watch.ts";

/** Where core keeps a sandbox's files (records.ts RECORD_DIR): annotations here. */
const ETC_KILN = "/etc/kiln";
const NAMED_PREFIX = "kiln.";
const ID = /^[0-9a-f]{12,32}$/;

export const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

const UNAVAILABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

function causeCode(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

function apiMessage(err: ApiException<unknown>): string {
  const body = err.body as { message?: string } | string | undefined;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return body?.message ?? err.message;
}

export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The sandbox's id: label kiln.id (set by a cold create or a claim); an unclaimed member's pod name. */
export function podId(pod: V1Pod): string {
  return pod.metadata?.labels?.[K8S_LABEL.id] ?? (pod.metadata?.name as string);
}

export function kilnLabels(pod: V1Pod): Record<string, string> {
  try {
    return JSON.parse(pod.metadata?.annotations?.[ANNOTATION.labels] ?? "{}") as Record<string, string>;
  } catch {
    return {};
  }
}

export function podStatus(pod: V1Pod): ContainerStatus {
  if (pod.metadata?.deletionTimestamp) return "removing";
  const status = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER);
  const state = status?.state;
  switch (pod.status?.phase) {
    case "Pending":
      // Starting (scheduled, pulling, creating): on Docker "created" means never started, which
      // core's sweeper treats as stopped (and auto-deletes); a pod that will run is not that. One
      // that cannot start (its image cannot be pulled) is.
      return /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError|CreateContainerError/.test(
        state?.waiting?.reason ?? "",
      )
        ? "created"
        : "restarting";
    case "Running":
      // A claimed pool member (restartPolicy Always) whose container restarted lost its
      // filesystem and state: for Kiln it stopped (stopIdle ends such pods).
      if ((status?.restartCount ?? 0) > 0 && pod.metadata?.labels?.[K8S_LABEL.kind] === "sandbox") return "exited";
      return state?.terminated ? "exited" : "running";
    case "Succeeded":
    case "Failed":
      return "exited";
    default:
      return "dead";
  }
}

function iso(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

export class KubernetesEngine implements Engine {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly networking: NetworkingV1Api;
  readonly images: Engine;
  /** Allow-list sandboxes' egress proxy (egress-proxy.ts). */
  readonly egressProxy: EgressProxy;
  readonly #o: KubernetesEngineOptions;
  #policies?: Promise<void>;
  #info?: Promise<EngineInfo>;
  /** id → pod name (a pod's name never changes; verified on use). */
  readonly #podNames = new Map<string, string>();
  /** pod name → when this process last wrote its last-activity annotation. */
  readonly #touched = new Map<string, number>();
  readonly #pools = new Set<KubePool>();
  readonly #persistence = new Persistence(this);

  constructor(options: KubernetesEngineOptions) {
    if (!options || typeof options.namespace !== "string" || options.namespace === "") {
      throw new InvalidArgumentError("namespace", "kubernetes() needs the namespace its sandboxes live in");
    }
    this.#o = options;
    this.namespace = options.namespace;
    const kc = new KubeConfig();
    if (options.kubeconfig === undefined) kc.loadFromDefault();
    else if (/^\s*(apiVersion|kind|clusters|current-context)\s*:/m.test(options.kubeconfig))
      kc.loadFromString(options.kubeconfig);
    else kc.loadFromFile(options.kubeconfig);
    if (options.context !== undefined) kc.setCurrentContext(options.context);
    this.kubeConfig = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.networking = kc.makeApiClient(NetworkingV1Api);
    this.images = options.images ?? new DockerEngine();
    this.egressProxy = new EgressProxy(this);
  }

  get options(): KubernetesEngineOptions {
    return this.#o;
  }

  /** Maps a client failure to Kiln's errors. */
  fail(err: unknown, what: string): never {
    if (KilnError.isInstance(err)) throw err;
    const code = causeCode(err);
    // undici's fetch fails with TypeError("fetch failed") and the socket error as its cause.
    const network =
      (code !== undefined && UNAVAILABLE.has(code)) || (err instanceof TypeError && err.message === "fetch failed");
    if (!(err instanceof ApiException) && network) {
      const server = this.kubeConfig.getCurrentCluster()?.server ?? "(no cluster in the kubeconfig)";
      throw new EngineUnavailableError(
        `No Kubernetes API server answers at ${server} (${code ?? (err as { cause?: { message?: string } }).cause?.message ?? "fetch failed"}): check the kubeconfig and its context`,
        { cause: err },
      );
    }
    if (!(err instanceof ApiException)) {
      throw new EngineError(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const message = `${what}: ${apiMessage(err)}`;
    switch (err.code) {
      case 400:
      case 422:
        throw new InvalidArgumentError(what, apiMessage(err), { cause: err });
      case 409:
        throw new ConflictError(message, { cause: err });
      case 401:
      case 403:
        throw new EngineError(
          `${message} (the kubeconfig's user needs pods, pods/exec, replicasets and networkpolicies in namespace ${this.namespace})`,
          { cause: err },
        );
      default:
        throw new EngineError(message, { cause: err });
    }
  }

  target(pod: string): ExecTarget {
    return {
      kubeConfig: this.kubeConfig,
      namespace: this.namespace,
      pod,
      container: CONTAINER,
      ...(this.#o.execProtocols === undefined ? {} : { protocols: this.#o.execProtocols }),
    };
  }

  podOptions(runtime: ContainerSpec["runtime"]): PodOptions {
    const o = this.#o;
    return {
      namespace: this.namespace,
      ...(o.imageRegistry === undefined ? {} : { imageRegistry: o.imageRegistry }),
      ...(o.imagePullPolicy === undefined ? {} : { imagePullPolicy: o.imagePullPolicy }),
      ...(runtime === "gvisor" && o.runtimeClasses?.gvisor ? { runtimeClassName: o.runtimeClasses.gvisor } : {}),
      ...(o.maxLifetimeSeconds === undefined ? {} : { maxLifetimeSeconds: o.maxLifetimeSeconds }),
      ...(o.requestRatio === undefined ? {} : { requestRatio: o.requestRatio }),
      ...(o.extraLabels === undefined ? {} : { extraLabels: o.extraLabels }),
    };
  }

  async ping(): Promise<void> {
    try {
      await this.kubeConfig.makeApiClient(VersionApi).getCode();
    } catch (err) {
      this.fail(err, "ping");
    }
  }

  info(): Promise<EngineInfo> {
    this.#info ??= this.kubeConfig
      .makeApiClient(VersionApi)
      .getCode()
      .then(
        (v) => {
          const arch = (v.platform ?? "").split("/")[1] ?? "";
          return {
            arch: arch === "amd64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch,
            os: (v.platform ?? "linux/").split("/")[0] ?? "linux",
            // ephemeral-storage limits: the kubelet evicts a pod that writes more.
            supportsDiskQuota: true,
            capsDiskByDefault: true,
            storage: `Kubernetes ${v.gitVersion} (ephemeral-storage limits, enforced by kubelet eviction)`,
            runtimes: ["runc", ...(this.#o.runtimeClasses?.gvisor ? ["runsc"] : [])],
            memoryBytes: 0,
            cpus: 0,
          };
        },
        (err: unknown) => {
          this.#info = undefined;
          this.fail(err, "engine info");
        },
      );
    return this.#info;
  }

  /** Refuses what this cluster cannot give a sandbox, before anything is created (fail closed). */
  admit(spec: ContainerSpec): void {
    if (this.#o.networkPolicy !== "enforced") {
      throw new NotSupportedError(
        "kubernetes(): Kiln confines a sandbox's network with NetworkPolicies, and the API cannot tell whether this cluster's CNI enforces them (without enforcement every sandbox reaches the whole network). Pass networkPolicy: \"enforced\" once you know it does (Calico, Cilium, Antrea, kube-router, ...); see docs/kubernetes.md",
      );
    }
    if (spec.runtime === "gvisor" && !this.#o.runtimeClasses?.gvisor) {
      throw new NotSupportedError(
        'runtime "gvisor" needs a RuntimeClass: pass kubernetes({ runtimeClasses: { gvisor: "<its name>" } }) for a cluster whose nodes run runsc (GKE Sandbox: "gvisor")',
      );
    }
  }

  /** The shared NetworkPolicies of this namespace, created (or brought up to date) once per process. */
  ensurePolicies(): Promise<void> {
    this.#policies ??= (async () => {
      const policies = networkPolicies({
        namespace: this.namespace,
        ...(this.#o.dns === undefined ? {} : { dns: this.#o.dns }),
        ...(this.#o.extraLabels === undefined ? {} : { extraLabels: this.#o.extraLabels }),
        egressProxy: { podLabels: PROXY_POD_LABELS, port: PROXY_PORT },
      });
      for (const body of policies) {
        const name = body.metadata?.name as string;
        try {
          await this.networking.createNamespacedNetworkPolicy({ namespace: this.namespace, body });
        } catch (err) {
          if (statusCode(err) !== 409) throw err;
          const current = await this.networking.readNamespacedNetworkPolicy({ name, namespace: this.namespace });
          await this.networking.replaceNamespacedNetworkPolicy({
            name,
            namespace: this.namespace,
            body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } },
          });
        }
      }
    })().catch((err) => {
      this.#policies = undefined;
      this.fail(err, "network policies");
    });
    return this.#policies;
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    this.admit(spec);
    await this.ensurePolicies();
    const named = spec.name.startsWith(NAMED_PREFIX);
    if (named && (await this.podsNamed(spec.name)).length > 0) {
      throw new ConflictError(`The name "${spec.name}" is already taken`);
    }
    const id = randomBytes(16).toString("hex");
    // An allow-list sandbox is bound to a Ready proxy replica (or refused): its address in the env.
    const proxy =
      typeof spec.network === "object"
        ? await this.egressProxy.bind(spec.image, { allow: spec.network.allow })
        : undefined;
    const body = sandboxPod(
      id,
      proxy ? { ...spec, env: { ...proxy.env, ...spec.env } } : spec,
      this.podOptions(spec.runtime),
    );
    if (proxy) Object.assign(body.metadata?.annotations ?? {}, proxy.annotations);
    let pod: V1Pod;
    try {
      pod = await this.core.createNamespacedPod({ namespace: this.namespace, body });
    } catch (err) {
      this.fail(err, "create pod");
    }
    this.#podNames.set(id, pod.metadata?.name as string);
    // A volume deleted between core's check and this create: the pod would never be scheduled.
    if (spec.volumes.length > 0) await this.#persistence.checkClaims(pod);
    if (named && !(await this.settleName(pod.metadata?.name as string, spec.name))) {
      await this.deletePod(pod.metadata?.name as string);
      throw new ConflictError(`The name "${spec.name}" is already taken`);
    }
    return id;
  }

  /** Live pods (not being deleted) whose container name is `name`. */
  async podsNamed(name: string): Promise<V1Pod[]> {
    const pods = await this.listPods(`${K8S_LABEL.nameHash}=${nameHash(name)}`);
    return pods.filter((p) => p.metadata?.annotations?.[ANNOTATION.containerName] === name);
  }

  /**
   * After a pod took `name` (create or patch): true when it is the only holder. Kubernetes has
   * no unique index on labels, so two claimers of one name can both write; each then reads
   * (a consistent list), and whoever sees another holder backs off. Of two writers the later
   * one's read always sees the earlier one's write, so at most one keeps the name; when both
   * see each other both back off, and each retries once after a random pause.
   */
  async settleName(podName: string, name: string, retry = true): Promise<boolean> {
    const holders = await this.podsNamed(name);
    if (holders.every((p) => p.metadata?.name === podName)) return true;
    if (!retry) return false;
    // Step aside, wait, and look again: if the other holder stepped aside too, take it.
    await this.patchPod(podName, { metadata: { labels: { [K8S_LABEL.nameHash]: null } } });
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    if ((await this.podsNamed(name)).length > 0) return false;
    await this.patchPod(podName, { metadata: { labels: { [K8S_LABEL.nameHash]: nameHash(name) } } });
    return this.settleName(podName, name, false);
  }

  async listPods(labelSelector: string): Promise<V1Pod[]> {
    try {
      const list = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector });
      return list.items.filter((p) => !p.metadata?.deletionTimestamp);
    } catch (err) {
      this.fail(err, "list pods");
    }
  }

  async readPod(name: string): Promise<V1Pod | undefined> {
    try {
      const pod = await this.core.readNamespacedPod({ name, namespace: this.namespace });
      return pod.metadata?.deletionTimestamp || pod.metadata?.labels?.[K8S_LABEL.kind] === undefined ? undefined : pod;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      this.fail(err, "read pod");
    }
  }

  async patchPod(name: string, body: object): Promise<V1Pod> {
    try {
      return await this.core.patchNamespacedPod({ name, namespace: this.namespace, body }, MERGE_PATCH);
    } catch (err) {
      this.fail(err, "patch pod");
    }
  }

  async deletePod(name: string): Promise<boolean> {
    try {
      await this.core.deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: 0 });
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      this.fail(err, "delete pod");
    }
  }

  /** Caches id → pod name (a claim knows both: the next lookup needs no list). */
  remember(id: string, podName: string): void {
    this.#podNames.set(id, podName);
  }

  /** The live pod behind an id (or unique 12+ digit prefix), a container name, or an unclaimed member's pod name. */
  async resolve(idOrName: string): Promise<V1Pod | undefined> {
    if (ID.test(idOrName)) {
      const known = this.#podNames.get(idOrName);
      if (known) {
        const pod = await this.readPod(known);
        if (pod && podId(pod) === idOrName) return pod;
        this.#podNames.delete(idOrName);
      }
      const pods = latestPerId(
        idOrName.length === 32
          ? await this.listPods(`${K8S_LABEL.id}=${idOrName}`)
          : (await this.listPods(K8S_LABEL.id)).filter((p) => podId(p).startsWith(idOrName)),
      );
      if (pods.length === 1) {
        const pod = pods[0] as V1Pod;
        this.#podNames.set(podId(pod), pod.metadata?.name as string);
        return pod;
      }
      return undefined;
    }
    const named = latestPerId(await this.podsNamed(idOrName));
    if (named.length > 0) return named[0];
    if (/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(idOrName) && idOrName.length <= 253) return this.readPod(idOrName);
    return undefined;
  }

  async #require(id: string): Promise<V1Pod> {
    const pod = await this.resolve(id);
    if (!pod) throw new SandboxNotFoundError(id);
    return pod;
  }

  async startContainer(id: string): Promise<void> {
    const pod = await this.#require(id);
    // A finished pod never runs again: a new pod with the same identity and /workspace.
    const name = podStatus(pod) === "exited" ? await this.#persistence.restart(pod) : (pod.metadata?.name as string);
    const running = await this.waitRunning(name, id);
    // Its rules are at the proxy, for its (maybe new) pod IP, before anything of the user's runs.
    const rules = this.egressProxy.rules(running);
    if (rules) await this.egressProxy.apply(id, running, rules);
  }

  /** Waits until the pod's container runs; a pod that ended cannot run again. */
  async waitRunning(podName: string, id: string): Promise<V1Pod> {
    const pod = await this.readPod(podName);
    // A pod that ends while we wait failed to start; one that had ended already was stopped.
    const fresh = pod !== undefined && podStatus(pod) !== "exited";
    const fatal = (p: V1Pod) =>
      /ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainerConfigError|CreateContainerError/.test(
        p.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state?.waiting?.reason ?? "",
      );
    // A watch of this one pod: the wait ends when the API server reports the change, not at a poll.
    const last = await waitForPod(
      this,
      podName,
      (p) => p === undefined || podStatus(p) === "running" || podStatus(p) === "exited" || fatal(p),
      this.#o.startTimeoutMs ?? 120_000,
    );
    if (!last) throw new SandboxNotFoundError(id);
    const status = podStatus(last);
    if (status === "running") return last;
    if (status === "exited") {
      if (fresh) {
        const log = await this.core
          .readNamespacedPodLog({ name: podName, namespace: this.namespace, container: CONTAINER, tailLines: 20 })
          .catch(() => "");
        const why = last.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state?.terminated;
        throw new EngineError(
          `pod ${podName} ended while starting (${why?.reason ?? "?"}, exit ${why?.exitCode ?? "?"})${log ? `: ${String(log).trim()}` : ""}`,
        );
      }
      throw new EngineError(`${id} ended before it was running again (pod ${podName})`);
    }
    if (fatal(last)) {
      const waiting = last.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state?.waiting;
      await this.deletePod(podName).catch(() => {});
      throw new EngineError(`pod ${podName} cannot start: ${waiting?.reason}: ${waiting?.message ?? ""}`);
    }
    const why = last?.status?.conditions?.find((c) => c.status === "False" && c.message)?.message;
    throw new EngineError(
      `pod ${podName} did not start within ${this.#o.startTimeoutMs ?? 120_000} ms${why ? `: ${why}` : ""}`,
    );
  }

  /**
   * Ends the pod: activeDeadlineSeconds (one of the few Pod fields that may change, and only
   * downwards) lowered to 1, which the kubelet enforces by killing it, plus SIGTERM to PID 1
   * (tini, which passes it on) so it ends at once. The pod stays, as an exited sandbox.
   */
  async stopContainer(id: string, timeoutMs: number): Promise<void> {
    let pod = await this.resolve(id);
    // Still starting: stop it once it runs (ending a pending pod would leave its start to race).
    if (pod && podStatus(pod) === "restarting")
      pod = await waitForPod(
        this,
        pod.metadata?.name as string,
        (p) => !p || podStatus(p) !== "restarting",
        this.#o.startTimeoutMs ?? 120_000,
      );
    if (!pod || podStatus(pod) !== "running") return;
    const name = pod.metadata?.name as string;
    // /workspace outlives the pod, in the sandbox's workspace PVC (a start mounts it).
    await this.#persistence.stash(pod);
    await this.patchPod(name, { spec: { activeDeadlineSeconds: 1 } }).catch(() => {});
    // A pool member's container (restartPolicy Always) would only restart: the deadline alone ends it.
    if (pod.spec?.restartPolicy === "Never") {
      await runExec(this.target(name), ["/bin/sh", "-c", "kill -TERM 1"]).catch(() => {});
    }
    await waitForPod(this, name, (p) => !p || podStatus(p) !== "running", timeoutMs + 10_000);
  }

  async removeContainer(id: string): Promise<boolean> {
    const pod = await this.resolve(id);
    if (!pod) return false;
    const full = podId(pod);
    this.#podNames.delete(id);
    this.#touched.delete(pod.metadata?.name as string);
    if (this.egressProxy.rules(pod)) await this.egressProxy.forget(pod);
    const removed = await this.deletePod(pod.metadata?.name as string);
    // A sandbox started again has had several pods (a stopped one may linger), and maybe a workspace claim.
    if (pod.metadata?.labels?.[K8S_LABEL.id] === full) {
      for (const other of await this.listPods(`${K8S_LABEL.id}=${full}`))
        await this.deletePod(other.metadata?.name as string).catch(() => false);
      for (const stash of await this.listPods(`${WORKSPACE_LABEL}=${full}`))
        await this.deletePod(stash.metadata?.name as string).catch(() => false);
      await this.#persistence.removeWorkspace(full).catch(() => {});
    }
    return removed;
  }

  pullImage(ref: string): Promise<boolean> {
    return this.images.pullImage(ref);
  }

  async renameContainer(id: string, name: string): Promise<void> {
    const pod = await this.#require(id);
    const podName = pod.metadata?.name as string;
    const named = name.startsWith(NAMED_PREFIX);
    if (named && (await this.podsNamed(name)).some((p) => p.metadata?.name !== podName)) {
      throw new ConflictError(`The name "${name}" is already taken`);
    }
    await this.patchPod(podName, {
      metadata: {
        labels: { [K8S_LABEL.nameHash]: nameHash(name) },
        annotations: { [ANNOTATION.containerName]: name },
      },
    });
    if (named && !(await this.settleName(podName, name))) {
      const previous = pod.metadata?.annotations?.[ANNOTATION.containerName] ?? "";
      await this.patchPod(podName, {
        metadata: {
          labels: { [K8S_LABEL.nameHash]: nameHash(previous) },
          annotations: { [ANNOTATION.containerName]: previous },
        },
      }).catch(() => {});
      throw new ConflictError(`The name "${name}" is already taken`);
    }
  }

  details(pod: V1Pod): ContainerDetails {
    const state = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER)?.state;
    const startedAt = iso(state?.running?.startedAt ?? state?.terminated?.startedAt ?? pod.status?.startTime);
    const finishedAt = iso(state?.terminated?.finishedAt);
    return {
      ...this.summary(pod),
      ...(startedAt === undefined ? {} : { startedAt }),
      ...(finishedAt === undefined ? {} : { finishedAt }),
      oomKilled: state?.terminated?.reason === "OOMKilled",
    };
  }

  summary(pod: V1Pod): ContainerSummary {
    return {
      id: podId(pod),
      name: pod.metadata?.annotations?.[ANNOTATION.containerName] ?? (pod.metadata?.name as string),
      image: pod.metadata?.annotations?.[ANNOTATION.image] ?? pod.spec?.containers[0]?.image ?? "",
      labels: kilnLabels(pod),
      status: podStatus(pod),
      createdAt: iso(pod.metadata?.creationTimestamp) ?? new Date(0).toISOString(),
    };
  }

  async inspectContainer(idOrName: string): Promise<ContainerDetails | undefined> {
    const pod = await this.resolve(idOrName);
    return pod && this.details(pod);
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    // Pairs valid as Kubernetes labels are mirrored on the pods: the API server filters on them.
    // Not the short-lived pods that copy a stopping sandbox's /workspace (kind stash).
    const selector: string[] = [K8S_LABEL.kind, `${K8S_LABEL.kind}!=stash`];
    for (const [k, v] of Object.entries(labels)) {
      if (v === "" && validLabel(k, "x")) selector.push(k);
      else if (validLabel(k, v)) selector.push(`${k}=${v}`);
    }
    const pods = latestPerId(await this.listPods([...new Set(selector)].join(",")));
    return pods
      .map((p) => this.summary(p))
      .filter((c) => Object.entries(labels).every(([k, v]) => (v === "" ? k in c.labels : c.labels[k] === v)));
  }

  async putArchive(id: string, path: string, tar: Readable | Buffer): Promise<void> {
    const pod = await this.#require(id);
    const podName = pod.metadata?.name as string;
    const buffer = Buffer.isBuffer(tar) ? tar : await buffered(tar);
    if (path.replace(/\/+$/, "") === ETC_KILN) {
      // Root's files on Docker; the pod has no root, so they are the pod's annotations.
      const annotations: Record<string, string> = {};
      for (const entry of await untar(buffer))
        annotations[`${ANNOTATION.etcPrefix}${entry.name}`] = entry.data.toString("utf8");
      await this.patchPod(podName, { metadata: { annotations } });
      return;
    }
    this.touch(pod);
    // head -c: tar sees EOF after exactly the archive, also on v4, which cannot half-close stdin.
    const result = await runExec(
      this.target(podName),
      ["/bin/sh", "-c", 'head -c "$1" | tar -x -m --no-same-owner -C "$2"', "sh", String(buffer.length), path],
      buffer,
    ).catch((err) => this.fail(err, "copy into pod"));
    if (result.exitCode !== 0)
      throw new EngineError(`copy into pod: tar exited ${result.exitCode}: ${result.stderr.trim()}`);
  }

  async getArchive(id: string, path: string): Promise<Readable | undefined> {
    const pod = await this.#require(id);
    const clean = path.replace(/\/+$/, "");
    if (clean.startsWith(`${ETC_KILN}/`)) {
      const file = clean.slice(ETC_KILN.length + 1);
      const value = pod.metadata?.annotations?.[`${ANNOTATION.etcPrefix}${file}`];
      if (value === undefined) return undefined;
      const archive = pack();
      archive.entry({ name: file, mode: 0o600 }, value);
      archive.finalize();
      return Readable.from(archive);
    }
    this.touch(pod);
    const slash = clean.lastIndexOf("/");
    const dir = slash <= 0 ? "/" : clean.slice(0, slash);
    const base = clean.slice(slash + 1) || ".";
    const result = await runExec(this.target(pod.metadata?.name as string), ["tar", "-c", "-C", dir, base]).catch(
      (err) => this.fail(err, "copy from pod"),
    );
    if (result.exitCode !== 0) {
      if (/No such file|Cannot stat/.test(result.stderr)) return undefined;
      throw new EngineError(`copy from pod: tar exited ${result.exitCode}: ${result.stderr.trim()}`);
    }
    return Readable.from([result.stdout]);
  }

  async openProcess(id: string, argv: string[]): Promise<ProcessChannel> {
    const pod = await this.#require(id);
    this.touch(pod);
    try {
      // Core's bridge command names the Docker socket path; the pod's agent listens in its emptyDir.
      const args = argv.map((a) => a.replaceAll("/run/kiln/agent.sock", AGENT_SOCKET));
      return await openExecChannel(this.target(pod.metadata?.name as string), args, () => this.touch(pod));
    } catch (err) {
      this.fail(err, "exec");
    }
  }

  /**
   * Records activity for the idle auto-stop: annotation kiln.last-activity, written at most
   * every autoStopMs/4 (1 s to 30 s) per pod, and only for sandboxes with an autoStopMs.
   */
  touch(pod: V1Pod): void {
    const autoStop = Number(kilnLabels(pod)[LABEL.autoStopMs]);
    if (!(autoStop > 0)) return;
    const name = pod.metadata?.name as string;
    const every = Math.min(30_000, Math.max(1_000, autoStop / 4));
    const now = Date.now();
    if (now - (this.#touched.get(name) ?? 0) < every) return;
    this.#touched.set(name, now);
    this.patchPod(name, {
      metadata: { annotations: { [ANNOTATION.lastActivity]: new Date(now).toISOString() } },
    }).catch(() => {});
  }

  /**
   * The idle auto-stop: every running sandbox with an autoStopMs whose last activity (or start)
   * is older than that is stopped. Any Kiln instance's sweep runs it (reclaimHelpers).
   */
  async stopIdle(now = Date.now()): Promise<string[]> {
    const stopped: string[] = [];
    for (const pod of await this.listPods(`${K8S_LABEL.kind}=sandbox`)) {
      const restarted = pod.status?.phase === "Running" && podStatus(pod) === "exited";
      if (restarted) {
        await this.patchPod(pod.metadata?.name as string, { spec: { activeDeadlineSeconds: 1 } }).catch(() => {});
        stopped.push(podId(pod));
        continue;
      }
      const autoStop = Number(kilnLabels(pod)[LABEL.autoStopMs]);
      if (!(autoStop > 0) || podStatus(pod) !== "running") continue;
      const last = Date.parse(pod.metadata?.annotations?.[ANNOTATION.lastActivity] ?? iso(pod.status?.startTime) ?? "");
      if (Number.isNaN(last) || now - last < autoStop) continue;
      await this.stopContainer(podId(pod), 0);
      stopped.push(podId(pod));
    }
    return stopped;
  }

  /**
   * The sweeper's turn: the idle auto-stop, and pool ReplicaSets' holders whose process is gone
   * (a crashed Kiln never left its pool): they are dropped, so the replicas shrink back; a
   * ReplicaSet left with no holder stays (it refills with no Kiln running) until one joins again.
   */
  async reclaimHelpers(ownerAlive?: (owner: string | undefined) => boolean): Promise<string[]> {
    await this.stopIdle();
    const removed = await this.egressProxy.reclaim().catch(() => []);
    await this.#persistence.sweepWorkspaces().catch(() => {});
    if (!ownerAlive) return removed;
    const sets = await this.apps
      .listNamespacedReplicaSet({ namespace: this.namespace, labelSelector: `${K8S_LABEL.kind}=pool` })
      .catch(() => ({ items: [] }));
    for (const rs of sets.items) {
      const holders = JSON.parse(rs.metadata?.annotations?.[HOLDERS] ?? "{}") as Holders;
      const dead = Object.entries(holders).filter(([, h]) => !ownerAlive(h.owner));
      if (dead.length === 0) continue;
      await updateHolders(this, rs.metadata?.name as string, (h) => {
        for (const [key] of dead) delete h[key];
      }).catch(() => {});
    }
    return removed;
  }

  /**
   * An allow-list sandbox takes new rules, or "none", in place (at its proxy, for its next
   * connection); its mode itself (a pod label, the proxy address in its env) is fixed.
   */
  async setNetwork(id: string, policy: "none" | "egress" | { allow: string[] }): Promise<void> {
    const pod = await this.#require(id);
    const mode = pod.metadata?.labels?.[K8S_LABEL.networkMode] ?? "none";
    if (mode !== "allow") {
      if (policy === mode) return;
      refuseModeSwitch(mode, policy);
    }
    if (policy === "egress") refuseModeSwitch(mode, policy);
    const rules = policy === "none" ? ({ none: true } as const) : { allow: policy.allow };
    const patched = await this.patchPod(pod.metadata?.name as string, {
      metadata: { annotations: { [PROXY_ANNOTATION.rules]: JSON.stringify(rules) } },
    });
    if (podStatus(patched) === "running") await this.egressProxy.apply(podId(patched), patched, rules);
  }

  async networkPolicy(id: string): Promise<"none" | { allow: string[] } | undefined> {
    const pod = await this.resolve(id);
    const rules = pod && this.egressProxy.rules(pod);
    if (!rules) return undefined;
    return "none" in rules ? "none" : { allow: rules.allow };
  }

  async networkLog(id: string): Promise<NetworkDecision[]> {
    const pod = await this.#require(id);
    if (!this.egressProxy.rules(pod)) return [];
    return this.egressProxy.log(podId(pod), pod);
  }

  warmPool(spec: ContainerSpec, shape: string, size: number): EngineWarmPool {
    this.admit(spec);
    if (typeof spec.network === "object") {
      throw new NotSupportedError(
        "allow-list sandboxes are not pooled on Kubernetes (each is bound to the egress proxy when created)",
      );
    }
    const pool = new KubePool(this, spec, shape, size);
    this.#pools.add(pool);
    pool.start();
    return pool;
  }

  imageExists(ref: string): Promise<boolean> {
    return this.images.imageExists(ref);
  }

  buildImage(context: Readable, tag: string, onProgress: (line: string) => void): Promise<void> {
    return this.images.buildImage(context, tag, onProgress);
  }

  importImage(rootfs: Readable, tag: string): Promise<void> {
    return this.images.importImage(rootfs, tag);
  }

  async commitContainer(): Promise<string> {
    throw new NotSupportedError(
      "snapshots by commit are not offered on Kubernetes (a pod's filesystem is the node's): use the engine-neutral snapshots of @kiln/kubernetes (takeSnapshot / restoreSnapshot)",
    );
  }

  listImages(labels: Record<string, string>): Promise<ImageSummary[]> {
    return this.images.listImages(labels);
  }

  removeImage(ref: string): Promise<void> {
    return this.images.removeImage(ref);
  }

  /** A PersistentVolumeClaim (persistence.ts); `owner` is the pods' fsGroup's job on Kubernetes. */
  createVolume(name: string, labels: Record<string, string>): Promise<VolumeSummary> {
    return this.#persistence.createVolume(name, labels);
  }

  listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]> {
    return this.#persistence.listVolumes(labels);
  }

  inspectVolume(name: string): Promise<VolumeSummary | undefined> {
    return this.#persistence.inspectVolume(name);
  }

  removeVolume(name: string): Promise<void> {
    return this.#persistence.removeVolume(name);
  }

  /** Stops every pool's watch (tests); pools' ReplicaSets stay unless their close() removed them. */
  dispose(): void {
    for (const pool of this.#pools) pool.stopWatching();
  }
}

export function newLabelsPatch(
  current: Record<string, string> | undefined,
  next: Record<string, string>,
): Record<string, string | null> {
  const patch: Record<string, string | null> = { ...next };
  for (const key of Object.keys(current ?? {})) if (!(key in next)) patch[key] = null;
  return patch;
}

export { networkMode, podLabels };

/**
 * One pod per sandbox id: a sandbox started again briefly has two (the new one is made before
 * the finished one is deleted, and a crash between leaves both); the newest is the sandbox.
 */
export function latestPerId(pods: V1Pod[]): V1Pod[] {
  const byId = new Map<string, V1Pod>();
  const time = (p: V1Pod) => new Date(p.metadata?.creationTimestamp ?? 0).getTime();
  for (const pod of pods) {
    const id = podId(pod);
    const seen = byId.get(id);
    if (!seen || time(pod) > time(seen) || (time(pod) === time(seen) && podStatus(seen) === "exited"))
      byId.set(id, pod);
  }
  return [...byId.values()];
}

async function buffered(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function untar(buffer: Buffer): Promise<{ name: string; data: Buffer }[]> {
  const out: { name: string; data: Buffer }[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on("end", () => {
        if (header.type === "file") out.push({ name: header.name.replace(/^\.?\//, ""), data: Buffer.concat(chunks) });
        next();
      });
      stream.resume();
    });
    ex.on("finish", resolve);
    ex.on("error", reject);
  });
  ex.end(buffer);
  await done;
  return out;
}
