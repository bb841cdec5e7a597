/**
 * The sim's scheduler + kubelet: every Pod runs as one Docker container on the sim's own bridge
 * network, and the Pod's status follows the container. What maps to what (each with the page it
 * follows):
 * - lifecycle, phases, conditions, container states:
 *   https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
 * - command/args vs ENTRYPOINT/CMD, `$(VAR)` expansion:
 *   https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/
 * - env from fields: https://kubernetes.io/docs/tasks/inject-data-application/environment-variable-expose-pod-information/
 * - securityContext: https://kubernetes.io/docs/tasks/configure-pod-container/security-context/
 *   (runAsUser/Group, runAsNonRoot checked against the image's user as the kubelet does,
 *   capabilities, allowPrivilegeEscalation -> no_new_privs, readOnlyRootFilesystem,
 *   seccompProfile: RuntimeDefault = the runtime's default profile; unset = Unconfined, the
 *   kubelet's default without --seccomp-default)
 * - limits: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
 *   (cpu limit -> CFS quota, cpu request -> shares, memory limit -> memory cgroup, no swap);
 *   a fixed pids limit per pod: https://kubernetes.io/docs/concepts/policy/pid-limiting/
 * - runtimeClassName: https://kubernetes.io/docs/concepts/containers/runtime-class/ (a class
 *   whose handler the node lacks leaves the pod Pending with a FailedCreatePodSandBox event)
 * - activeDeadlineSeconds: the Pod API reference
 *   (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/: counted from
 *   startTime) and https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
 *   (phase Failed, reason DeadlineExceeded)
 * - graceful deletion: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
 * - emptyDir volumes (as tmpfs): https://kubernetes.io/docs/concepts/storage/volumes/#emptydir
 * - persistentVolumeClaim volumes (Docker volumes; scheduling waits for the claim): storage.ts
 * - readiness probes (exec only): https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/
 */
import { spawn } from "node:child_process";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import type { Api } from "./api.ts";
import { isolationOf } from "./netpol.ts";
import { sameJson } from "./patch.ts";
import { parseQuantity } from "./resources.ts";
import type { Storage } from "./storage.ts";
import { type Change, type KObject, now, type Store } from "./store.ts";

export const SIM_LABEL = "kiln.kube-sim";

interface PodState {
  uid: string;
  ns: string;
  name: string;
  containerId?: string;
  /** When the pod was bound (its status.startTime): activeDeadlineSeconds counts from here. */
  startedMs: number;
  /**
   * Settles once the container's create and start are over (started, or given up): the deadline
   * waits for it, so that a stop can never run before a start still in flight and leave the
   * container running in a Failed pod.
   */
  launched: Promise<void>;
  deadline?: NodeJS.Timeout;
  probe?: NodeJS.Timeout;
  /** Set once the pod is being torn down (delete or deadline): exits are no longer reported. */
  stopping: boolean;
  deadlineHit: boolean;
  running: boolean;
  isolated: boolean;
  /** The filter table applied in the pod's network namespace (netpol.ts), if any. */
  rules?: string;
  gvisor: boolean;
  networkOp: Promise<void>;
}

export interface KubeletOptions {
  simId: string;
  network: string;
  /** RuntimeClass name -> handler (the Docker runtime name). */
  runtimeHandlers: Record<string, string>;
  /** Docker runtimes the engine has registered (`docker info` Runtimes). */
  dockerRuntimes: Set<string>;
  podPidsLimit: number;
  /** Labels every container gets besides the sim's own (the owner, for sweepKubeSims). */
  extraLabels: Record<string, string>;
  log: (line: string) => void;
}

class ConfigError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class Kubelet {
  readonly #api: Api;
  readonly #store: Store;
  readonly #docker: Docker;
  readonly #opts: KubeletOptions;
  readonly #pods = new Map<string, PodState>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #unlisten: () => void;
  #closed = false;
  /** Claims and their volumes (storage.ts), set by startKubeSim. */
  storage?: Storage;

  constructor(api: Api, docker: Docker, opts: KubeletOptions) {
    this.#api = api;
    this.#store = api.store;
    this.#docker = docker;
    this.#opts = opts;
    this.#unlisten = this.#store.listen((c) => this.#onChange(c));
  }

  #track<T>(p: Promise<T>): void {
    const q = p.catch((err) => this.#opts.log(`kubelet: ${(err as Error).message}`));
    this.#pending.add(q);
    void q.finally(() => this.#pending.delete(q));
  }

  #onChange(c: Change): void {
    if (this.#closed) return;
    if (c.resource === "pods") {
      const uid = c.object.metadata.uid!;
      // After the emit that announced it: every watcher sees ADDED before the kubelet's MODIFIED.
      if (c.type === "ADDED") this.#track(Promise.resolve().then(() => this.#run(c.object)));
      else if (c.type === "MODIFIED") {
        const st = this.#pods.get(uid);
        if (!st) return;
        if (c.previous?.spec.activeDeadlineSeconds !== c.object.spec.activeDeadlineSeconds)
          this.#armDeadline(st, c.object);
      }
      // Policies with pod selectors resolve to pod IPs: any pod's labels or IP may change them.
      if (
        c.type !== "MODIFIED" ||
        !sameJson(c.previous?.metadata.labels, c.object.metadata.labels) ||
        c.previous?.status?.podIP !== c.object.status?.podIP
      )
        this.#reconcileAll();
    } else if (c.resource === "networkpolicies" || c.resource === "namespaces") {
      this.#reconcileAll();
    }
  }

  /** The running container of a pod, for exec and logs; undefined when there is none. */
  container(pod: KObject): { id: string; running: boolean } | undefined {
    const st = this.#pods.get(pod.metadata.uid!);
    return st?.containerId ? { id: st.containerId, running: st.running } : undefined;
  }

  /** Writes the kubelet's view into the pod (status, and spec.nodeName when binding). */
  #patch(st: PodState, mutate: (pod: KObject) => void): KObject | undefined {
    const cur = this.#store.get("pods", st.ns, st.name);
    if (!cur || cur.metadata.uid !== st.uid) return undefined;
    const next = structuredClone(cur);
    mutate(next);
    if (JSON.stringify(next) === JSON.stringify(cur)) return cur;
    return this.#store.update("pods", next);
  }

  #current(st: PodState): KObject | undefined {
    const cur = this.#store.get("pods", st.ns, st.name);
    return cur?.metadata.uid === st.uid ? cur : undefined;
  }

  async #run(pod: KObject): Promise<void> {
    const md = pod.metadata;
    const st: PodState = {
      uid: md.uid!,
      ns: md.namespace!,
      name: md.name,
      startedMs: Date.now(),
      launched: Promise.resolve(),
      stopping: false,
      deadlineHit: false,
      running: false,
      isolated: false,
      gvisor: false,
      networkOp: Promise.resolve(),
    };
    this.#pods.set(st.uid, st);
    const c = pod.spec.containers[0];
    // The scheduler places a pod only once its claims are bound (storage.ts): until then it
    // stays Pending, PodScheduled=False, and is tried again.
    for (let why = this.storage?.unschedulable(pod); why; why = this.storage?.unschedulable(pod)) {
      const message = `0/1 nodes are available: ${why}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`;
      const cur = this.#patch(st, (p) => {
        p.status.conditions = [condition("PodScheduled", "False", "Unschedulable", message)];
      });
      if (!cur || st.stopping || this.#closed) {
        this.#pods.delete(st.uid);
        return;
      }
      await sleep(250);
      const now = this.#current(st);
      if (!now || st.stopping || this.#closed) {
        this.#pods.delete(st.uid);
        return;
      }
      pod = now;
    }
    // The scheduler binds the pod to the one node; the kubelet acknowledges it (startTime).
    st.startedMs = Date.now();
    const bound = this.#patch(st, (p) => {
      p.spec.nodeName = "kube-sim";
      p.status.hostIP = "127.0.0.1";
      p.status.hostIPs = [{ ip: "127.0.0.1" }];
      p.status.startTime = now();
      p.status.conditions = [
        condition("PodReadyToStartContainers", "False"),
        condition("Initialized", "True"),
        condition("Ready", "False", "ContainersNotReady", `containers with unready status: [${c.name}]`),
        condition("ContainersReady", "False", "ContainersNotReady", `containers with unready status: [${c.name}]`),
        condition("PodScheduled", "True"),
      ];
      p.status.containerStatuses = [
        containerStatus(c, { waiting: { reason: "ContainerCreating" } }, { ready: false, started: false }),
      ];
    });
    if (!bound) return;
    let launched = () => {};
    st.launched = new Promise<void>((resolve) => {
      launched = resolve;
    });
    this.#api.recordEvent(
      bound,
      "Normal",
      "Scheduled",
      `Successfully assigned ${st.ns}/${st.name} to kube-sim`,
      "default-scheduler",
    );
    this.#armDeadline(st, bound);
    try {
      const rc = pod.spec.runtimeClassName as string | undefined;
      const handler = rc ? this.#opts.runtimeHandlers[rc] : undefined;
      if (rc && (!handler || !this.#opts.dockerRuntimes.has(handler))) {
        // The node has no such handler: the sandbox cannot be created, the pod stays Pending.
        this.#api.recordEvent(
          bound,
          "Warning",
          "FailedCreatePodSandBox",
          `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "${handler ?? rc}" is configured`,
        );
        this.#patch(st, (p) => {
          p.status.conditions = p.status.conditions.map((x: KObject) =>
            x.type === "PodReadyToStartContainers" ? { ...x, reason: "FailedCreatePodSandBox" } : x,
          );
        });
        return;
      }
      const image = await this.#inspectImage(c.image);
      const mounts = this.storage ? await this.storage.mounts(bound, c.image) : [];
      const options = this.#createOptions(bound, image, handler, mounts);
      if (st.stopping) return;
      const container = await this.#docker.createContainer(options);
      st.containerId = container.id;
      if (st.stopping) {
        // Deleted while the container was being created: the teardown may not have seen it.
        await container.remove({ force: true, v: true }).catch(() => undefined);
        return;
      }
      this.#api.recordEvent(bound, "Normal", "Pulled", `Container image "${c.image}" already present on machine`);
      this.#api.recordEvent(bound, "Normal", "Created", `Created container ${c.name}`);
      st.gvisor = handler === "runsc";
      if (isolationOf(bound, this.#store).noNetwork) {
        await this.#docker.getNetwork(this.#opts.network).disconnect({ Container: container.id, Force: true });
        st.isolated = true;
      }
      if (st.stopping) return;
      await container.start();
      st.running = true;
      launched();
      // The policies in force apply before the pod is reported Running (the CNI's part of
      // sandbox creation).
      await this.#reconcileNetwork(st);
      const info = await container.inspect();
      const ip = info.NetworkSettings.Networks?.[this.#opts.network]?.IPAddress ?? "";
      const probe = c.readinessProbe;
      const startedAt = info.State.StartedAt ? `${info.State.StartedAt.slice(0, 19)}Z` : now();
      const running = this.#patch(st, (p) => {
        if (p.status.phase === "Failed") return;
        p.status.phase = "Running";
        if (ip) {
          p.status.podIP = ip;
          p.status.podIPs = [{ ip }];
        }
        setCondition(p, "PodReadyToStartContainers", "True");
        if (!probe) {
          setCondition(p, "ContainersReady", "True");
          setCondition(p, "Ready", "True");
        }
        p.status.containerStatuses = [
          containerStatus(
            c,
            { running: { startedAt } },
            { ready: !probe, started: true, id: container.id, imageID: image.Id },
          ),
        ];
      });
      if (running) this.#api.recordEvent(running, "Normal", "Started", `Started container ${c.name}`);
      if (probe) this.#startProbe(st, c);
      await this.#waitLoop(st, container.id, pod.spec.restartPolicy);
    } catch (err) {
      if (st.stopping) return;
      const reason = err instanceof ConfigError ? err.reason : "CreateContainerError";
      const message = (err as Error).message;
      this.#api.recordEvent(bound, "Warning", "Failed", `Error: ${message}`);
      this.#patch(st, (p) => {
        p.status.containerStatuses = [
          containerStatus(c, { waiting: { reason, message } }, { ready: false, started: false }),
        ];
      });
    } finally {
      launched();
    }
  }

  async #inspectImage(ref: string): Promise<Docker.ImageInspectInfo> {
    try {
      return await this.#docker.getImage(ref).inspect();
    } catch {
      // https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff (the sim never pulls)
      throw new ConfigError(
        "ErrImagePull",
        `image "${ref}" is not present on the Docker engine (kube-sim does not pull images)`,
      );
    }
  }

  /** The Docker create options for a pod's one container. */
  #createOptions(
    pod: KObject,
    image: Docker.ImageInspectInfo,
    runtime: string | undefined,
    mounts: Docker.MountSettings[] = [],
  ): Docker.ContainerCreateOptions {
    const spec = pod.spec;
    const c = spec.containers[0];
    const who = `(pod: "${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})", container: ${c.name})`;
    const psc = spec.securityContext ?? {};
    const csc = c.securityContext ?? {};
    const runAsUser = csc.runAsUser ?? psc.runAsUser;
    const runAsGroup = csc.runAsGroup ?? psc.runAsGroup;
    const runAsNonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
    const imageUser = image.Config.User ?? "";
    if (runAsNonRoot) {
      // The kubelet's verifyRunAsNonRoot.
      if (runAsUser !== undefined) {
        if (runAsUser === 0)
          throw new ConfigError("CreateContainerConfigError", `container's runAsUser breaks non-root policy ${who}`);
      } else {
        const u = imageUser.split(":")[0] ?? "";
        if (u === "" || u === "root" || u === "0")
          throw new ConfigError(
            "CreateContainerConfigError",
            `container has runAsNonRoot and image will run as root ${who}`,
          );
        if (!/^\d+$/.test(u))
          throw new ConfigError(
            "CreateContainerConfigError",
            `container has runAsNonRoot and image has non-numeric user (${u}), cannot verify user is non-root ${who}`,
          );
      }
    }
    let user: string | undefined;
    if (runAsUser !== undefined) user = runAsGroup !== undefined ? `${runAsUser}:${runAsGroup}` : String(runAsUser);
    else if (runAsGroup !== undefined) user = `${imageUser.split(":")[0] || "0"}:${runAsGroup}`;

    const env = this.#env(pod, c, image);
    const expand = (s: string) => expandVars(s, env);
    const securityOpt: string[] = [];
    // https://kubernetes.io/docs/tasks/configure-pod-container/security-context/#set-the-seccomp-profile-for-a-container
    const seccomp = csc.seccompProfile ?? psc.seccompProfile;
    if (!seccomp || seccomp.type === "Unconfined") securityOpt.push("seccomp=unconfined");
    else if (seccomp.type === "Localhost")
      throw new ConfigError("CreateContainerConfigError", "kube-sim does not support Localhost seccomp profiles");
    if (csc.allowPrivilegeEscalation === false) securityOpt.push("no-new-privileges:true");

    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests ?? {};
    const hostConfig: Docker.HostConfig = {
      NetworkMode: this.#opts.network,
      RestartPolicy: {
        Name: spec.restartPolicy === "Always" ? "always" : spec.restartPolicy === "OnFailure" ? "on-failure" : "no",
      },
      PidsLimit: this.#opts.podPidsLimit,
      CapDrop: csc.capabilities?.drop,
      CapAdd: csc.capabilities?.add,
      SecurityOpt: securityOpt,
      Privileged: csc.privileged === true,
      ReadonlyRootfs: csc.readOnlyRootFilesystem === true,
      GroupAdd: [...(psc.supplementalGroups ?? []), ...(psc.fsGroup !== undefined ? [psc.fsGroup] : [])].map(String),
      LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "1" } },
      Tmpfs: {},
      Mounts: mounts,
    };
    if (limits.cpu !== undefined) hostConfig.NanoCpus = Math.round(parseQuantity(String(limits.cpu))! * 1e9);
    if (requests.cpu !== undefined)
      hostConfig.CpuShares = Math.max(2, Math.floor(parseQuantity(String(requests.cpu))! * 1024));
    if (limits.memory !== undefined) {
      hostConfig.Memory = Math.round(parseQuantity(String(limits.memory))!);
      hostConfig.MemorySwap = hostConfig.Memory;
    }
    if (runtime) hostConfig.Runtime = runtime;
    for (const m of c.volumeMounts ?? []) {
      const vol = (spec.volumes ?? []).find((v: KObject) => v.name === m.name);
      if (vol?.persistentVolumeClaim && this.storage) continue; // in `mounts`
      if (!vol?.emptyDir)
        throw new ConfigError(
          "CreateContainerConfigError",
          `kube-sim supports only emptyDir and persistentVolumeClaim volumes (volume "${m.name}")`,
        );
      const size = vol.emptyDir.sizeLimit ? `,size=${Math.round(parseQuantity(String(vol.emptyDir.sizeLimit))!)}` : "";
      hostConfig.Tmpfs![m.mountPath] = `${m.readOnly ? "ro" : "rw"},nosuid,nodev,mode=1777${size}`;
    }
    return {
      // The uid keeps names distinct when a pod is recreated under its name while the old
      // container is still being killed (a force delete returns at once).
      name: `${`kube-sim-${this.#opts.simId}-${pod.metadata.namespace}-${pod.metadata.name}`.slice(0, 180)}-${pod.metadata.uid!.slice(0, 8)}`,
      Hostname: pod.metadata.name.slice(0, 63),
      Image: c.image,
      ...(c.command ? { Entrypoint: c.command.map(expand) } : {}),
      ...(c.args ? { Cmd: c.args.map(expand) } : c.command ? { Cmd: [] } : {}),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
      ...(user !== undefined ? { User: user } : {}),
      OpenStdin: c.stdin === true,
      StdinOnce: c.stdinOnce === true,
      Tty: c.tty === true,
      Labels: {
        ...this.#opts.extraLabels,
        [SIM_LABEL]: this.#opts.simId,
        [`${SIM_LABEL}.pod`]: `${pod.metadata.namespace}.${pod.metadata.name}`,
        [`${SIM_LABEL}.uid`]: pod.metadata.uid!,
      },
      HostConfig: hostConfig,
    };
  }

  /** The container's environment: the image's, then the spec's (later entries may use `$(EARLIER)`). */
  #env(pod: KObject, c: KObject, image: Docker.ImageInspectInfo): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of image.Config.Env ?? []) {
      const i = e.indexOf("=");
      env[e.slice(0, i)] = e.slice(i + 1);
    }
    const specEnv: Record<string, string> = {};
    for (const e of c.env ?? []) {
      let v: string;
      if (e.valueFrom?.fieldRef) v = fieldRef(pod, e.valueFrom.fieldRef.fieldPath);
      else if (e.valueFrom?.resourceFieldRef) {
        const [kind, res] = String(e.valueFrom.resourceFieldRef.resource).split(".");
        const q = c.resources?.[kind === "limits" ? "limits" : "requests"]?.[res!];
        v = q === undefined ? "0" : String(Math.ceil(parseQuantity(String(q))! / (res === "cpu" ? 1 : 1)));
      } else if (e.valueFrom?.secretKeyRef)
        throw new ConfigError("CreateContainerConfigError", `secret "${e.valueFrom.secretKeyRef.name}" not found`);
      else if (e.valueFrom?.configMapKeyRef)
        throw new ConfigError(
          "CreateContainerConfigError",
          `configmap "${e.valueFrom.configMapKeyRef.name}" not found`,
        );
      else v = expandVars(String(e.value ?? ""), specEnv);
      specEnv[e.name] = v;
    }
    return { ...env, ...specEnv };
  }

  async #waitLoop(st: PodState, id: string, restartPolicy: string): Promise<void> {
    const container = this.#docker.getContainer(id);
    // The first wait is "not-running": a process that exits at once may be gone before it starts.
    for (let first = true; ; first = false) {
      await container.wait({ condition: first ? "not-running" : "next-exit" }).catch(() => undefined);
      if (st.stopping || this.#closed) return;
      const info = await container.inspect().catch(() => undefined);
      if (!info) return;
      const s = info.State;
      const terminated = {
        exitCode: s.ExitCode,
        reason: s.OOMKilled ? "OOMKilled" : s.ExitCode === 0 ? "Completed" : "Error",
        startedAt: `${s.StartedAt.slice(0, 19)}Z`,
        finishedAt: `${s.FinishedAt.slice(0, 19)}Z`,
        containerID: `docker://${id}`,
      };
      const restarts = restartPolicy === "Always" || (restartPolicy === "OnFailure" && s.ExitCode !== 0);
      if (!restarts) {
        st.running = false;
        this.#stopProbe(st);
        this.#patch(st, (p) => {
          if (p.status.phase === "Failed" && p.status.reason === "DeadlineExceeded") return;
          p.status.phase = s.ExitCode === 0 ? "Succeeded" : "Failed";
          setCondition(p, "Ready", "False", "PodCompleted");
          setCondition(p, "ContainersReady", "False", "PodCompleted");
          setCondition(p, "PodReadyToStartContainers", "False");
          const cs = p.status.containerStatuses?.[0] ?? {};
          p.status.containerStatuses = [{ ...cs, ready: false, started: false, state: { terminated } }];
        });
        return;
      }
      // Docker restarts it (its restart policy): record the restart, as the kubelet would.
      this.#patch(st, (p) => {
        const cs = p.status.containerStatuses?.[0] ?? {};
        p.status.containerStatuses = [{ ...cs, restartCount: (cs.restartCount ?? 0) + 1, lastState: { terminated } }];
      });
    }
  }

  #startProbe(st: PodState, c: KObject): void {
    const probe = c.readinessProbe;
    if (!probe.exec?.command) {
      const pod = this.#current(st);
      if (pod)
        this.#api.recordEvent(
          pod,
          "Warning",
          "Unhealthy",
          "Readiness probe: kube-sim runs exec probes only; the pod stays unready",
        );
      return;
    }
    const period = (probe.periodSeconds ?? 10) * 1000;
    const success = probe.successThreshold ?? 1;
    const failure = probe.failureThreshold ?? 3;
    let ok = 0;
    let bad = 0;
    let ready = false;
    const tick = async () => {
      if (st.stopping || !st.running || this.#closed) return;
      const code = await this.#execOnce(st.containerId!, probe.exec.command, (probe.timeoutSeconds ?? 1) * 1000);
      if (code === 0) {
        ok++;
        bad = 0;
      } else {
        bad++;
        ok = 0;
      }
      const next = ready ? bad < failure : ok >= success;
      if (next !== ready) {
        ready = next;
        this.#patch(st, (p) => {
          if (p.status.phase !== "Running") return;
          setCondition(p, "ContainersReady", ready ? "True" : "False", ready ? undefined : "ContainersNotReady");
          setCondition(p, "Ready", ready ? "True" : "False", ready ? undefined : "ContainersNotReady");
          const cs = p.status.containerStatuses?.[0];
          if (cs) cs.ready = ready;
        });
      }
      st.probe = setTimeout(() => this.#track(tick()), period);
    };
    st.probe = setTimeout(() => this.#track(tick()), (probe.initialDelaySeconds ?? 0) * 1000);
  }

  #stopProbe(st: PodState): void {
    if (st.probe) clearTimeout(st.probe);
    st.probe = undefined;
  }

  async #execOnce(id: string, cmd: string[], timeoutMs: number): Promise<number> {
    try {
      const exec = await this.#docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as Duplex;
      stream.resume();
      const done = new Promise<void>((resolve) =>
        stream
          .on("close", resolve)
          .on("end", resolve)
          .on("error", () => resolve()),
      );
      const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs).unref());
      if ((await Promise.race([done, timer])) === "timeout") {
        stream.destroy();
        return -1;
      }
      return (await exec.inspect()).ExitCode ?? -1;
    } catch {
      return -1;
    }
  }

  #armDeadline(st: PodState, pod: KObject): void {
    if (st.deadline) clearTimeout(st.deadline);
    st.deadline = undefined;
    const ads = pod.spec.activeDeadlineSeconds;
    if (!ads || st.deadlineHit) return;
    const left = Math.max(0, st.startedMs + ads * 1000 - Date.now());
    st.deadline = setTimeout(() => this.#track(this.#deadlineExceeded(st)), left);
  }

  async #deadlineExceeded(st: PodState): Promise<void> {
    const pod = this.#current(st);
    if (!pod || st.stopping || ["Succeeded", "Failed"].includes(pod.status.phase)) return;
    st.deadlineHit = true;
    st.stopping = true;
    this.#stopProbe(st);
    // A start in flight is let finish first (the create path gives up once it sees `stopping`):
    // a stop sent while Docker is still starting the container is a no-op, and the container
    // would then run on in a pod reported Failed.
    await st.launched;
    this.#api.recordEvent(
      pod,
      "Normal",
      "DeadlineExceeded",
      "Pod was active on the node longer than the specified deadline",
    );
    let terminated: Record<string, unknown> | undefined;
    if (st.containerId) {
      const container = this.#docker.getContainer(st.containerId);
      await container.stop({ t: pod.spec.terminationGracePeriodSeconds ?? 30 }).catch(() => undefined);
      const s = (await container.inspect().catch(() => undefined))?.State;
      // (A container made but never started, the deadline having come first, has no terminated state.)
      if (s && !s.StartedAt.startsWith("0001-"))
        terminated = {
          exitCode: s.ExitCode,
          reason: "Error",
          startedAt: `${s.StartedAt.slice(0, 19)}Z`,
          finishedAt: `${s.FinishedAt.slice(0, 19)}Z`,
          containerID: `docker://${st.containerId}`,
        };
    }
    st.running = false;
    this.#patch(st, (p) => {
      p.status.phase = "Failed";
      p.status.reason = "DeadlineExceeded";
      p.status.message = "Pod was active on the node longer than the specified deadline";
      setCondition(p, "Ready", "False", "PodFailed");
      setCondition(p, "ContainersReady", "False", "PodFailed");
      setCondition(p, "PodReadyToStartContainers", "False");
      const cs = p.status.containerStatuses?.[0];
      if (cs)
        p.status.containerStatuses = [
          { ...cs, ready: false, started: false, state: terminated ? { terminated } : cs.state },
        ];
    });
  }

  /**
   * A pod delete (the API's hook). Graceful: deletionTimestamp set (MODIFIED), the container
   * stopped with the grace period (SIGTERM, then SIGKILL), removed, then the object (DELETED).
   * Grace 0 removes the object at once and kills the container in the background (a force delete).
   */
  deletePod(pod: KObject, grace: number): KObject {
    const st = this.#pods.get(pod.metadata.uid!);
    if (grace === 0 || !st) {
      const gone = this.#store.remove("pods", pod.metadata.namespace, pod.metadata.name)!;
      if (st) this.#track(this.#teardown(st, 0));
      return gone;
    }
    if (pod.metadata.deletionTimestamp) return pod;
    const marked = this.#patch(st, (p) => {
      p.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, "Z");
      p.metadata.deletionGracePeriodSeconds = grace;
    })!;
    this.#track(
      this.#teardown(st, grace).then(() => {
        const cur = this.#current(st);
        if (cur) this.#store.remove("pods", st.ns, st.name);
      }),
    );
    return marked;
  }

  async #teardown(st: PodState, grace: number): Promise<void> {
    st.stopping = true;
    if (st.deadline) clearTimeout(st.deadline);
    this.#stopProbe(st);
    // Wait for a create in flight to settle so its container is known.
    for (let i = 0; i < 200 && !st.containerId && this.#pods.has(st.uid) && !st.running; i++) {
      const found = await this.#docker
        .listContainers({ all: true, filters: { label: [`${SIM_LABEL}.uid=${st.uid}`] } })
        .catch(() => []);
      if (found[0]) {
        st.containerId = found[0].Id;
        break;
      }
      await sleep(50);
      if (i > 20) break;
    }
    if (st.containerId) {
      const container = this.#docker.getContainer(st.containerId);
      if (grace > 0) await container.stop({ t: grace }).catch(() => undefined);
      await container.remove({ force: true, v: true }).catch(() => undefined);
    }
    st.running = false;
    this.#pods.delete(st.uid);
  }

  #reconcileTimer: NodeJS.Immediate | undefined;

  #reconcileAll(): void {
    this.#reconcileTimer ??= setImmediate(() => {
      this.#reconcileTimer = undefined;
      for (const st of this.#pods.values()) this.#track(this.#reconcileNetwork(st));
    });
  }

  /**
   * Brings the pod's network in line with the NetworkPolicies selecting it (netpol.ts): egress
   * deny-all disconnects it from the sim's network; other isolation is an iptables filter table
   * in its namespace. If that cannot be applied (no root, no nsenter), it fails closed: the pod
   * loses its network, with a Warning event saying why.
   */
  #reconcileNetwork(st: PodState): Promise<void> {
    st.networkOp = st.networkOp.then(async () => {
      const pod = this.#current(st);
      if (!pod || !st.containerId || st.stopping || this.#closed || !st.running) return;
      const want = isolationOf(pod, this.#store);
      let noNetwork = want.noNetwork;
      // Under gVisor the runtime has no network (runsc is registered with --network=none).
      if (!noNetwork && !st.gvisor && want.rules !== st.rules) {
        try {
          const info = await this.#docker.getContainer(st.containerId).inspect();
          await iptablesRestore(info.State.Pid, want.rules ?? EMPTY_FILTER);
          st.rules = want.rules;
        } catch (err) {
          noNetwork = true;
          this.#api.recordEvent(
            pod,
            "Warning",
            "NetworkPolicyNotEnforced",
            `kube-sim could not apply this pod's NetworkPolicy rules (${(err as Error).message.split("\n")[0]}): the pod has no network instead`,
            "kube-sim",
          );
        }
      }
      if (noNetwork === st.isolated) return;
      const net = this.#docker.getNetwork(this.#opts.network);
      if (noNetwork) await net.disconnect({ Container: st.containerId, Force: true });
      else await net.connect({ Container: st.containerId });
      st.isolated = noNetwork;
    });
    return st.networkOp;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unlisten();
    for (const st of this.#pods.values()) {
      st.stopping = true;
      if (st.deadline) clearTimeout(st.deadline);
      this.#stopProbe(st);
    }
  }

  /** After close() and the containers' removal: lets the work in flight finish (bounded). */
  async settle(ms = 10_000): Promise<void> {
    await Promise.race([Promise.allSettled([...this.#pending]), sleep(ms)]);
  }
}

function fieldRef(pod: KObject, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return pod.metadata[m[1] as "labels" | "annotations"]?.[m[2]!] ?? "";
  switch (path) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace ?? "";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "spec.nodeName":
      return "kube-sim";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "";
    case "status.hostIP":
      return "127.0.0.1";
    default:
      // status.podIP is not known before the container starts in the sim.
      return "";
  }
}

/** `$(VAR)` expands to a defined variable, `$$` escapes, anything else stays as written. */
function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name?: string) => {
    if (all === "$$") return "$";
    return name !== undefined && Object.hasOwn(env, name) ? env[name]! : all;
  });
}

function condition(type: string, status: "True" | "False", reason?: string, message?: string): KObject {
  return {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: now(),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  } as unknown as KObject;
}

function setCondition(pod: KObject, type: string, status: "True" | "False", reason?: string): void {
  const list: KObject[] = pod.status.conditions ?? [];
  const i = list.findIndex((c) => c.type === type);
  if (i >= 0 && list[i]!.status === status) return;
  const c = condition(type, status, reason);
  if (i >= 0) list[i] = c;
  else list.push(c);
  pod.status.conditions = list;
}

function containerStatus(
  c: KObject,
  state: Record<string, unknown>,
  o: { ready: boolean; started: boolean; id?: string; imageID?: string },
): KObject {
  return {
    name: c.name,
    image: c.image,
    imageID: o.imageID ? `docker://${o.imageID}` : "",
    ...(o.id ? { containerID: `docker://${o.id}` } : {}),
    ready: o.ready,
    started: o.started,
    restartCount: 0,
    state,
    lastState: {},
  } as unknown as KObject;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

/** Replaces the filter table of the network namespace of process `pid` (needs root). */
function iptablesRestore(pid: number, table: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!pid) return reject(new Error("the container has no process"));
    const child = spawn("nsenter", ["-t", String(pid), "-n", "iptables-restore", "-w"], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(err.trim() || `iptables-restore exited ${code}`)),
    );
    child.stdin.end(table);
  });
}
