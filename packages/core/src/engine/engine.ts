/**
 * The container engine as Kiln's sandbox, pool, snapshot and image code sees it.
 *
 * Only `engine/docker/` knows Docker. A Kubernetes engine will implement this same interface
 * without any change above it. Specs here speak in Kiln's terms (resources, network mode);
 * each engine turns them into its own hardened configuration.
 */
import type { Duplex, Readable } from "node:stream";
import type { NetworkDecision } from "../types.ts";

export interface EngineInfo {
  /** "x86_64" | "aarch64" as the engine reports it. */
  arch: string;
  os: string;
  /** True when the engine can cap a container's writable layer (diskMb). */
  supportsDiskQuota: boolean;
  /** True when every sandbox gets DEFAULT_DISK_MB unless it asks otherwise (see docker-engine.ts). */
  capsDiskByDefault: boolean;
  /** Docker without storage quotas: diskMb is a loop-mounted disk per sandbox (engine/docker/disks.ts). */
  loopDisks?: boolean;
  /** Human-readable description of the storage backend, for error messages. */
  storage: string;
  /** Container runtimes the engine has registered (e.g. "runc", "runsc"). */
  runtimes: string[];
  /** The engine host's memory (0 when unknown): limits above it are refused. */
  memoryBytes: number;
  /** The engine host's CPUs (0 when unknown). */
  cpus: number;
}

/** Isolation tier: "runc" (namespaces, cgroups, seccomp) or "gvisor" (runsc: a user-space kernel). */
export type RuntimeTier = "runc" | "gvisor";

export interface VolumeMount {
  volume: string;
  mountPath: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  cpus: number;
  memoryMb: number;
  pids: number;
  /** Writable-layer cap; undefined = the engine's default (DEFAULT_DISK_MB where capsDiskByDefault, else none). */
  diskMb?: number;
  /** @default "runc" */
  runtime?: RuntimeTier;
  /** An allow-list carries its expanded rules (network/policy.ts). */
  network: "none" | "egress" | { allow: string[] };
  volumes: VolumeMount[];
}

export type ContainerStatus = "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

export interface ContainerDetails {
  id: string;
  /** Without the engine's leading slash. */
  name: string;
  image: string;
  labels: Record<string, string>;
  status: ContainerStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  oomKilled: boolean;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  status: ContainerStatus;
  createdAt: string;
}

export interface BuildProgress {
  /** One line of build output or a phase description. */
  message: string;
  phase: "base" | "build" | "done";
}

export interface ImageSummary {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  createdAt: string;
  sizeBytes: number;
}

export interface VolumeSummary {
  name: string;
  labels: Record<string, string>;
  createdAt: string;
}

/**
 * A bidirectional byte stream to a process inside a container: writes go to its stdin,
 * reads come from its stdout. Its stderr is collected for diagnostics.
 */
export interface ProcessChannel {
  stream: Duplex;
  /** Whatever the process wrote to stderr so far (bounded). */
  stderr(): string;
  close(): void;
  /** Let the open channel keep the process alive (a call is in flight) or not (idle). Optional. */
  ref?(): void;
  unref?(): void;
}

/**
 * A warm pool the engine keeps itself (Kubernetes: a ReplicaSet per shape, which refills even
 * when no Kiln process runs). Optional: without Engine.warmPool, core's WarmPool creates and
 * starts pool containers one by one (Docker).
 */
export interface EngineWarmPool {
  /** Members ready to claim right now, as last seen. */
  readonly ready: number;
  /** Resolves once `size` members are ready; rejects when the engine reports a failure. */
  filled(): Promise<void>;
  /**
   * Takes one ready member for a sandbox, atomically (a member goes to one claimer only), and
   * turns it into an ordinary sandbox: `labels` are the labels a cold create would have given
   * it, `name` its container name. Returns its id; undefined when none is ready (create cold).
   * ConflictError when `name` is taken (the member stays in the pool).
   */
  claim(name: string, labels: Record<string, string>): Promise<string | undefined>;
  /** Stops keeping the pool (its unclaimed members go). */
  close(): Promise<void>;
}

export interface Engine {
  /** Throws EngineUnavailableError with a how-to when nothing answers. */
  ping(): Promise<void>;
  /** Optional: lets go of what this process keeps ready (Docker: spare disks); Kiln.close calls it. */
  close?(): Promise<void>;
  info(): Promise<EngineInfo>;

  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** Idempotent: stopping a stopped container is fine. */
  stopContainer(id: string, timeoutMs: number): Promise<void>;
  /**
   * Force-removes a container (killing it if running). Resolves false when it was already gone
   * or another caller's removal is in progress, so concurrent deletes have one winner.
   */
  removeContainer(id: string): Promise<boolean>;
  /**
   * Optional: removeContainer for a container whose agent was just asked to `exit` (it ends the
   * container's main process itself). `acknowledged` resolves true once the agent agreed, false
   * when it refused or did not answer. Waits (briefly) for the container to stop on its own, then
   * removes it, sparing the engine a kill (Docker: about a third of a delete); kills it as
   * removeContainer does when the agent refused or the container does not stop in time. Same
   * result and contract as removeContainer.
   */
  removeExited?(id: string, acknowledged: Promise<boolean>): Promise<boolean>;
  /** Pulls an image from its registry; false when no registry can provide it. */
  pullImage(ref: string): Promise<boolean>;
  renameContainer(id: string, name: string): Promise<void>;
  /** undefined when there is no such container. */
  inspectContainer(idOrName: string): Promise<ContainerDetails | undefined>;
  /** All containers (running or not) carrying every one of `labels` (an empty value matches any). */
  listContainers(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /** Extracts a tar archive into `path` inside the container, as root (works stopped too). */
  putArchive(id: string, path: string, tar: Readable | Buffer): Promise<void>;
  /** A tar archive of `path` inside the container; undefined when the path is missing. */
  getArchive(id: string, path: string): Promise<Readable | undefined>;
  /** Starts `argv` in a running container and connects to its stdin/stdout. */
  openProcess(id: string, argv: string[]): Promise<ProcessChannel>;
  /**
   * Optional: connects to the stdin/stdout of the container's own agent, called once by the
   * process that just created it (before or right after its start), saving an openProcess.
   * undefined when this container's agent cannot be reached that way: use openProcess.
   */
  attachAgent?(id: string): Promise<ProcessChannel | undefined>;

  imageExists(ref: string): Promise<boolean>;
  /** Builds an image from a tar build context (Dockerfile at its root). */
  buildImage(context: Readable, tag: string, onProgress: (line: string) => void): Promise<void>;
  /** Imports a root filesystem tarball as an image. */
  importImage(rootfs: Readable, tag: string): Promise<void>;
  /** Commits a container's filesystem as an image (snapshots). */
  commitContainer(id: string, tag: string, labels: Record<string, string>): Promise<string>;
  listImages(labels: Record<string, string>): Promise<ImageSummary[]>;
  removeImage(ref: string): Promise<void>;

  /**
   * Creates a volume whose root is owned by `owner` ("uid:gid"), so the unprivileged sandbox
   * user can write to it wherever it is mounted. `image` is any local image with chown.
   */
  createVolume(name: string, labels: Record<string, string>, owner: string, image: string): Promise<VolumeSummary>;
  listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]>;
  /** undefined when there is no such volume. */
  inspectVolume(name: string): Promise<VolumeSummary | undefined>;
  removeVolume(name: string): Promise<void>;

  /**
   * Removes the engine's own helper containers nobody needs any more (Docker: the network
   * holders of egress sandboxes whose sandbox is gone, guards a dead process left), given how to
   * tell whether a "<hostname>/<pid>" owner still lives and the time to judge ages by. Returns
   * the ids removed.
   */
  /**
   * Changes a sandbox's network policy (running or stopped); effective for its next connection.
   * Engines refuse a switch they cannot make in place with NotSupportedError.
   */
  setNetwork?(id: string, policy: "none" | "egress" | { allow: string[] }): Promise<void>;
  /** The policy in force now, where it can differ from the one at creation (allow-list sandboxes). */
  networkPolicy?(id: string): Promise<"none" | { allow: string[] } | undefined>;
  /** The recent decisions of the sandbox's egress proxy, oldest first ([] when it has none). */
  networkLog?(id: string): Promise<NetworkDecision[]>;

  /**
   * Optional: an engine-kept warm pool of `size` members of `spec` (its labels mark them as pool
   * members of the shape `shape`). Core's WarmPool uses it instead of creating members itself.
   */
  warmPool?(spec: ContainerSpec, shape: string, size: number): EngineWarmPool;

  reclaimHelpers?(ownerAlive: (owner: string | undefined) => boolean, now?: number): Promise<string[]>;
}
