/**
 * The Docker implementation of Engine. This folder is the only place that imports dockerode.
 */
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import { Duplex, type Readable } from "node:stream";
import Dockerode from "dockerode";
import { DEFAULT_DISK_MB, DELETE_EXIT_WAIT_MS } from "../../defaults.ts";
import {
  ConflictError,
  EngineError,
  EngineUnavailableError,
  InvalidArgumentError,
  KilnError,
  NotSupportedError,
  SandboxNotFoundError,
} from "../../errors.ts";
import type { NetworkDecision } from "../../types.ts";
import type {
  ContainerDetails,
  ContainerSpec,
  ContainerStatus,
  ContainerSummary,
  Engine,
  EngineInfo,
  ImageSummary,
  ProcessChannel,
  VolumeSummary,
} from "../engine.ts";
import { LABEL } from "../labels.ts";
import { ALLOW_LABEL, AllowNetworks, type AllowProxyOptions, proxyEnv } from "./allow.ts";
import { StreamDemuxer } from "./demux.ts";
import { DISK_LABEL, DISK_ROOT, type Disk, diskOf, LoopDisks } from "./disks.ts";
import { EGRESS_LABEL, EGRESS_NETWORK, EgressNetworks } from "./egress.ts";
import { containerCreateOptions } from "./host-config.ts";

/** How many containers this engine remembers creating (their holder, first start, agent stdio). */
const CREATED_KEEP = 4096;

/** What this engine knows of a container it created; spares the cold path an inspect per step. */
interface Created {
  /** The network holder (egress and allow-list sandboxes); fixed at creation. */
  holder: string | undefined;
  allow: boolean;
  /** Not started yet: the first start needs no inspect. */
  fresh: boolean;
  /** Its image's agent serves the attached stdin/stdout, and nobody attached yet. */
  stdio: boolean;
  /** Its loop-mounted disk (disks.ts), if any. */
  disk: string | undefined;
}

/** How much of a process's stderr we keep for diagnostics. */
const STDERR_KEEP_BYTES = 8 * 1024;
const MIB = 1024 * 1024;

/** Refuses limits the engine's host cannot honour, naming the field and the capacity. */
function checkCapacity(spec: ContainerSpec, info: EngineInfo): void {
  const hostMb = Math.floor(info.memoryBytes / MIB);
  if (hostMb > 0 && spec.memoryMb > hostMb) {
    throw new InvalidArgumentError(
      "options.resources.memoryMb",
      `${spec.memoryMb} MiB is more than this engine's host has (${hostMb} MiB)`,
    );
  }
  if (info.cpus > 0 && spec.cpus > info.cpus) {
    throw new InvalidArgumentError(
      "options.resources.cpus",
      `${spec.cpus} is more than this engine's host has (${info.cpus} CPUs)`,
    );
  }
}

export type DockerConnection = Dockerode | Dockerode.DockerOptions;

interface EngineHttpError {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  message?: string;
}

/**
 * Where this engine connection points, for messages. docker-modem's default socketPath is a
 * function (it probes ~/.docker/run/docker.sock, then /var/run/docker.sock): resolve it the same way.
 */
export function describeTarget(docker: Dockerode): string {
  const o = docker.modem as unknown as {
    socketPath?: string | (() => unknown);
    host?: string;
    port?: number | string;
    protocol?: string;
  };
  if (typeof o.socketPath === "string") return o.socketPath;
  if (typeof o.socketPath === "function") {
    const user = join(homedir(), ".docker", "run", "docker.sock");
    return existsSync(user) ? user : "/var/run/docker.sock";
  }
  return `${o.protocol ?? "http"}://${o.host ?? "localhost"}${o.port ? `:${o.port}` : ""}`;
}

/** Socket-level failures: nothing (or nothing sane) answers at the engine's address. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTSOCK",
]);

/** The engine label `scripts/setup.sh storage` sets on a dockerd whose data root is btrfs with simple quotas. */
export const SQUOTA_ENGINE_LABEL = "kiln.storage=btrfs-squota";

/** The runtime name each isolation tier is registered under in the engine (setup.sh registers runsc). */
export const RUNTIME_NAMES = { runc: "runc", gvisor: "runsc" } as const;

function engineMessage(err: EngineHttpError): string {
  return err.json?.message ?? err.message ?? String(err);
}

export interface DockerEngineOptions {
  /** An image with iptables and setpriv, for the network holders of egress sandboxes (see egress.ts). */
  firewallImage?: () => Promise<string>;
  /** Test-only settings of the egress proxy of allow-list sandboxes (see allow.ts). */
  allowProxy?: AllowProxyOptions;
  /**
   * Disk caps on storage without quotas (overlay2 on ext4): loop-mounted ext4 disks (disks.ts).
   * Default: on for a Linux engine, unless KILN_LOOP_DISKS=0.
   */
  loopDisks?: boolean;
  /** Ready disks of each size in use this process keeps (default 1; KILN_DISK_SPARES). */
  diskSpares?: number;
}

export class DockerEngine implements Engine {
  readonly docker: Dockerode;
  readonly #egress: EgressNetworks;
  readonly #allow: AllowNetworks;
  #info?: Promise<EngineInfo>;
  readonly #created = new Map<string, Created>();
  readonly #disks: LoopDisks;
  readonly #loopDisks: boolean;
  /** This engine's host could not make a loop disk: the default cap is skipped from then on. */
  #loopDisksFailed = false;

  constructor(connection?: DockerConnection, options: DockerEngineOptions = {}) {
    this.docker = connection instanceof Dockerode ? connection : new Dockerode(connection);
    this.#egress = new EgressNetworks(this.docker, options.firewallImage, (err, what) => this.#fail(err, what));
    this.#allow = new AllowNetworks(this.docker, this.#egress, options.allowProxy ?? {}, (err, what) =>
      this.#fail(err, what),
    );
    this.#loopDisks = options.loopDisks ?? process.env.KILN_LOOP_DISKS !== "0";
    const spares = options.diskSpares ?? Number(process.env.KILN_DISK_SPARES ?? 1);
    this.#disks = new LoopDisks(this.docker, options.firewallImage, Number.isInteger(spares) ? spares : 1);
  }

  /** The loop-mounted disks of capped sandboxes (tests look at them). */
  get disks(): LoopDisks {
    return this.#disks;
  }

  /** The egress proxy of allow-list sandboxes and its network (tests and benchmarks look at it). */
  get allowNetworks(): AllowNetworks {
    return this.#allow;
  }

  /** Maps a dockerode failure to Kiln's errors: one table for every status the engine returns. */
  #fail(err: unknown, what: string): never {
    if (KilnError.isInstance(err)) throw err;
    const e = err as EngineHttpError;
    if (e.code !== undefined && UNAVAILABLE_CODES.has(e.code)) {
      const target = describeTarget(this.docker);
      const hint =
        e.code === "EACCES"
          ? "this user may not use it: add the user to the docker group or run as root"
          : "start Docker (on Linux: `sudo dockerd &` or `sudo systemctl start docker`; elsewhere Docker Desktop or colima), or set DOCKER_HOST to an engine that runs";
      throw new EngineUnavailableError(`No Docker engine at ${target} (${e.code}): ${hint}`, { cause: err });
    }
    const message = `${what}: ${engineMessage(e)}`;
    switch (e.statusCode) {
      case 400:
        throw new InvalidArgumentError(what, engineMessage(e), { cause: err });
      case 409:
        throw new ConflictError(message, { cause: err });
      default:
        throw new EngineError(message, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.#disks.close();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      this.#fail(err, "ping");
    }
  }

  info(): Promise<EngineInfo> {
    this.#info ??= this.docker.info().then(
      (raw: {
        Architecture: string;
        OSType: string;
        Driver: string;
        DriverStatus?: [string, string][];
        Runtimes?: Record<string, unknown>;
        MemTotal?: number;
        NCPU?: number;
        Labels?: string[];
      }) => {
        const backing = raw.DriverStatus?.find(([k]) => k === "Backing Filesystem")?.[1] ?? raw.Driver;
        // Docker caps a writable layer only with overlay2 on XFS mounted with pquota, or btrfs
        // (qgroups; setup.sh makes a btrfs data root with simple quotas), devicemapper, zfs.
        const native =
          (raw.Driver === "overlay2" && backing === "xfs") || ["devicemapper", "btrfs", "zfs"].includes(raw.Driver);
        // Elsewhere (overlay2 on ext4), loop-mounted ext4 disks cap the writable places (disks.ts).
        const loop = !native && this.#loopDisks && raw.OSType === "linux";
        return {
          arch: raw.Architecture,
          os: raw.OSType,
          supportsDiskQuota: native || loop,
          // A default cap only where its meaning is exact and turning it on changes nothing else:
          // XFS project quotas, or a btrfs data root Kiln's setup made with simple quotas (labelled so),
          // or Kiln's own loop disks. On other btrfs engines a size would switch on qgroups for the whole filesystem.
          capsDiskByDefault:
            loop ||
            (raw.Driver === "overlay2" && backing === "xfs") ||
            (raw.Labels ?? []).includes(SQUOTA_ENGINE_LABEL),
          loopDisks: loop,
          storage: `${raw.Driver} on ${backing}${loop ? " (disk caps: loop-mounted ext4 disks)" : ""}`,
          runtimes: Object.keys(raw.Runtimes ?? {}),
          memoryBytes: raw.MemTotal ?? 0,
          cpus: raw.NCPU ?? 0,
        };
      },
      (err: unknown) => {
        this.#info = undefined;
        this.#fail(err, "engine info");
      },
    );
    return this.#info;
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const info = await this.info();
    checkCapacity(spec, info);
    let diskMb = spec.diskMb;
    if (diskMb !== undefined && !info.supportsDiskQuota) {
      throw new NotSupportedError(
        `resources.diskMb needs a storage driver with quotas (btrfs, overlay2 on XFS with pquota, zfs) or Kiln's loop-mounted disks (a Linux engine, KILN_LOOP_DISKS not 0); this engine has ${info.storage}. Run Kiln's setup (scripts/setup.sh storage) to give the engine a btrfs data root, or leave diskMb unset here.`,
      );
    }
    // Where the engine can cap the writable layer, every sandbox gets a cap (bytes, and inodes: on btrfs every inode is metadata charged to the same quota).
    if (diskMb === undefined && info.capsDiskByDefault) diskMb = DEFAULT_DISK_MB;
    const runtime = RUNTIME_NAMES[spec.runtime ?? "runc"];
    if (spec.runtime === "gvisor" && !info.runtimes.includes(runtime)) {
      throw new NotSupportedError(
        `runtime "gvisor" needs gVisor's runsc registered with the engine as "${runtime}" (this engine has ${info.runtimes.join(", ") || "none"}): run scripts/setup.sh gvisor, or add it to /etc/docker/daemon.json "runtimes" and reload dockerd`,
      );
    }
    // An egress sandbox lives in its network holder's namespace (egress.ts); so does an
    // allow-list sandbox, whose holder's only way out is Kiln's egress proxy (allow.ts).
    const allow = typeof spec.network === "object" ? await this.#allow.createHolder() : undefined;
    const holder = spec.network === "egress" ? await this.#egress.createHolder() : allow?.holder;
    let disk: Disk | undefined;
    // The image's id (its disk's template) and whether its agent serves its stdio.
    const image = this.docker.getImage(spec.image).inspect();
    image.catch(() => {});
    try {
      if (diskMb !== undefined && info.loopDisks && !(spec.diskMb === undefined && this.#loopDisksFailed)) {
        try {
          disk = await this.#disks.take(diskMb, (await image).Id);
        } catch (err) {
          // The default cap where this engine's host cannot make loop disks: none, as on an
          // engine without quotas before them (diskMb asked for explicitly fails instead).
          if (spec.diskMb !== undefined || !(KilnError.isInstance(err) && err.code === "NOT_SUPPORTED")) throw err;
          this.#loopDisksFailed = true;
        }
      }
      const options = containerCreateOptions(
        {
          ...spec,
          // The engine's own quota (StorageOpt) only where its storage has one; else the disk.
          ...(diskMb === undefined || info.loopDisks ? {} : { diskMb }),
          ...(allow ? { env: { ...proxyEnv(allow.proxy.url), ...spec.env } } : {}),
        },
        holder,
        disk,
      );
      if (holder !== undefined) options.Labels = { ...options.Labels, [EGRESS_LABEL.holder]: holder };
      if (allow) options.Labels = { ...options.Labels, [ALLOW_LABEL.sandbox]: "1" };
      // Whether the image's agent serves its stdio is asked alongside the create, off the critical path.
      const [container, stdio] = await Promise.all([
        this.docker.createContainer(options),
        image.then(
          (raw) => raw.Config?.Labels?.[LABEL.agentStdio] === "1",
          () => false,
        ),
      ]);
      if (allow && typeof spec.network === "object") {
        // The rules are at the proxy before anything of the sandbox's runs.
        try {
          const proxy = await this.#allow.ensure();
          await this.#allow.writePolicy(proxy.name, allow.address, allow.holder, spec.network.allow);
        } catch (err) {
          await container.remove({ force: true }).catch(() => {});
          throw err;
        }
      }
      this.#remember(container.id, { holder, allow: allow !== undefined, fresh: true, stdio, disk: disk?.id });
      if (disk) this.#disks.adopted(disk.id);
      return container.id;
    } catch (err) {
      if (holder !== undefined) await this.#egress.removeHolder(holder);
      if (disk) {
        await this.#disks.release(disk.id).catch(() => {}); // else the sweeper's
        this.#disks.adopted(disk.id);
      }
      if ((err as EngineHttpError).statusCode === 409) {
        throw new ConflictError(`The name "${spec.name}" is already taken`, { cause: err });
      }
      this.#fail(err, "create container");
    }
  }

  #remember(id: string, created: Created): void {
    this.#created.set(id, created);
    if (this.#created.size > CREATED_KEEP) this.#created.delete(this.#created.keys().next().value as string);
  }

  async startContainer(id: string): Promise<void> {
    const container = this.docker.getContainer(id);
    const created = this.#created.get(id);
    if (created?.fresh) {
      // Just created here: no inspect needed to know it is not running, not legacy, and its holder.
      created.fresh = false;
      try {
        if (created.allow) await this.#allow.ensure();
        if (created.holder !== undefined) await this.#egress.startHolder(created.holder);
        await container.start();
        return;
      } catch (err) {
        if ((err as EngineHttpError).statusCode === 304) return;
        if (created.holder !== undefined) await this.#egress.stopHolder(created.holder);
        this.#fail(err, "start container");
      }
    }
    let holder: string | undefined;
    try {
      const raw = await container.inspect();
      if (raw.HostConfig.NetworkMode === EGRESS_NETWORK) {
        throw new NotSupportedError(
          `${id} is an egress sandbox made by an older Kiln, whose packet filter came only after the sandbox's own code started: delete it and create it again`,
        );
      }
      holder = raw.Config.Labels?.[EGRESS_LABEL.holder];
      // Its disk is mounted again after a host reboot (until then the engine refuses the start).
      const disk = diskOf(raw.Config.Labels);
      if (disk !== undefined && !raw.State.Running) await this.#disks.ensureMounted(disk);
      // An allow-list sandbox's only way out is the proxy: bring it back if it was stopped.
      if (raw.Config.Labels?.[ALLOW_LABEL.sandbox] === "1" && !raw.State.Running) await this.#allow.ensure();
      // Nothing of the sandbox's runs before its network is confined: the holder's namespace is
      // filtered before the sandbox joins it, on every start.
      if (holder !== undefined && !raw.State.Running) await this.#egress.startHolder(holder);
      await container.start();
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 304) return; // already running
      if (holder !== undefined) await this.#egress.stopHolder(holder);
      this.#fail(err, "start container");
    }
  }

  /**
   * Holders, guards, legacy firewall helpers and egress proxies nobody needs any more (the
   * sweeper calls this). Holders first: a proxy goes once no holder refers to it.
   */
  async reclaimHelpers(ownerAlive: (owner: string | undefined) => boolean, now = Date.now()): Promise<string[]> {
    try {
      const holders = await this.#egress.reclaim(ownerAlive, now);
      return [...holders, ...(await this.#allow.reclaim(now)), ...(await this.#reclaimDisks(ownerAlive, now))];
    } catch (err) {
      this.#fail(err, "reclaim network helpers");
    }
  }

  /** Disks no container refers to any more (their ids, as "disk:<id>"). */
  async #reclaimDisks(ownerAlive: (owner: string | undefined) => boolean, now: number): Promise<string[]> {
    if (!(await this.info()).loopDisks) return [];
    const users = await this.docker.listContainers({ all: true, filters: { label: [DISK_LABEL.disk] } });
    const inUse = new Set(users.flatMap((c) => diskOf(c.Labels) ?? []));
    return (await this.#disks.reclaim(inUse, ownerAlive, now)).map((id) => `disk:${id}`);
  }

  /** The allow-list holder of a sandbox, its address and proxy; undefined when it is not one. */
  async #allowHolder(id: string): Promise<{ holder: string; proxy: string; address: string } | undefined> {
    let labels: Record<string, string>;
    try {
      labels = (await this.docker.getContainer(id).inspect()).Config.Labels ?? {};
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 404) throw new SandboxNotFoundError(id);
      this.#fail(err, "inspect container");
    }
    const holder = labels[EGRESS_LABEL.holder];
    if (holder === undefined) return undefined;
    const info = await this.#allow.holderInfo(holder);
    return info && { holder, ...info };
  }

  /**
   * An allow-list sandbox takes new rules, or "none" (everything denied), in place: the proxy
   * reads them on the next connection. A sandbox's network mode itself (no network, the egress
   * bridge, the proxy) is its container's network namespace, fixed when Docker created it, so
   * switching a "none" or "egress" sandbox is refused (create a new sandbox; create one with
   * `{ allow: [] }` to start closed and open it later).
   */
  async setNetwork(id: string, policy: "none" | "egress" | { allow: string[] }): Promise<void> {
    const allow = await this.#allowHolder(id);
    if (allow) {
      if (policy === "egress") {
        throw new NotSupportedError(
          'setNetwork: an allow-list sandbox cannot switch to "egress" in place (its network namespace has no route but the proxy); create a new sandbox with network: "egress"',
        );
      }
      // The proxy is running (restarted if someone stopped it), so the rules land in the live one.
      await this.#allow.ensure();
      await this.#allow.writePolicy(
        allow.proxy,
        allow.address,
        allow.holder,
        policy === "none" ? undefined : policy.allow,
      );
      return;
    }
    const egress = (await this.#egress.holderOf(id)) !== undefined;
    const current = egress ? "egress" : "none";
    if (policy === current) return;
    throw new NotSupportedError(
      `setNetwork: a sandbox created with network: "${current}" keeps it (Docker fixes a container's network namespace at creation); create a new sandbox, or create it with network: { allow: [] } to change its allow-list later`,
    );
  }

  /** An allow-list sandbox's current policy at its proxy (setNetwork may have changed it); else undefined. */
  async networkPolicy(id: string): Promise<"none" | { allow: string[] } | undefined> {
    const allow = await this.#allowHolder(id);
    if (!allow) return undefined;
    return this.#allow.readPolicy(allow.proxy, allow.address);
  }

  async networkLog(id: string): Promise<NetworkDecision[]> {
    const allow = await this.#allowHolder(id);
    if (!allow) return [];
    return this.#allow.log(allow.proxy, allow.holder);
  }

  async stopContainer(id: string, timeoutMs: number): Promise<void> {
    let holder: string | undefined;
    try {
      const container = this.docker.getContainer(id);
      // A paused container cannot receive SIGTERM; unpause first.
      const raw = await container.inspect();
      holder = raw.Config.Labels?.[EGRESS_LABEL.holder];
      if (raw.State.Paused) await container.unpause();
      await container.stop({ t: Math.ceil(timeoutMs / 1000) });
    } catch (err) {
      const status = (err as EngineHttpError).statusCode;
      if (status !== 304 && status !== 404) this.#fail(err, "stop container");
    }
    // The network holder's lifecycle follows its sandbox's.
    if (holder !== undefined) await this.#egress.stopHolder(holder);
  }

  async removeContainer(id: string): Promise<boolean> {
    // An egress sandbox's network holder goes with it (known without an inspect if created here).
    const created = this.#created.get(id);
    const labels = created ? undefined : await this.#labelsOf(id);
    const holder = created ? created.holder : labels?.[EGRESS_LABEL.holder];
    const disk = created ? created.disk : diskOf(labels);
    try {
      await this.docker.getContainer(id).remove({ force: true, v: false });
      this.#created.delete(id);
      // Its disk goes off the delete's path (a disk left behind is the sweeper's).
      if (disk !== undefined) await this.#disks.releaseLater(disk);
      if (holder !== undefined) await this.#egress.removeHolder(holder);
      return true;
    } catch (err) {
      const e = err as EngineHttpError;
      if (e.statusCode === 404) {
        this.#created.delete(id);
        return false;
      }
      // 409 "removal already in progress": another caller is deleting it and wins.
      if (e.statusCode === 409 && /already in progress/.test(engineMessage(e))) return false;
      this.#fail(err, "remove container");
    }
  }

  async removeExited(id: string, acknowledged: Promise<boolean>): Promise<boolean> {
    // The agent is ending the container's main process: wait for the container to stop, which
    // costs the engine less than killing it (no kill through the runtime). Refused, not stopped
    // in time, or gone: removeContainer kills (or reports) it as usual.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), DELETE_EXIT_WAIT_MS);
    acknowledged.then(
      (yes) => yes || abort.abort(),
      () => abort.abort(),
    );
    try {
      await this.docker.getContainer(id).wait({ condition: "not-running", abortSignal: abort.signal });
    } catch {
      // removeContainer below decides
    } finally {
      clearTimeout(timer);
    }
    return this.removeContainer(id);
  }

  async #labelsOf(id: string): Promise<Record<string, string> | undefined> {
    try {
      return (await this.docker.getContainer(id).inspect()).Config.Labels ?? {};
    } catch {
      return undefined;
    }
  }

  async pullImage(ref: string): Promise<boolean> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(ref);
    } catch {
      return false; // no registry reachable, or no such image there
    }
    try {
      await this.#follow(stream, () => {}, `pull ${ref}`);
      return true;
    } catch {
      return false;
    }
  }

  async renameContainer(id: string, name: string): Promise<void> {
    try {
      await this.docker.getContainer(id).rename({ name });
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 409) {
        throw new ConflictError(`The name "${name}" is already taken`, { cause: err });
      }
      this.#fail(err, "rename container");
    }
  }

  async inspectContainer(idOrName: string): Promise<ContainerDetails | undefined> {
    try {
      const raw = await this.docker.getContainer(idOrName).inspect();
      return {
        id: raw.Id,
        name: raw.Name.replace(/^\//, ""),
        image: raw.Config.Image,
        labels: raw.Config.Labels ?? {},
        status: raw.State.Status as ContainerStatus,
        createdAt: raw.Created,
        startedAt: raw.State.StartedAt,
        finishedAt: raw.State.FinishedAt,
        oomKilled: raw.State.OOMKilled,
      };
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 404) return undefined;
      this.#fail(err, "inspect container");
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    try {
      const raw = await this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) } });
      return raw.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? "").replace(/^\//, ""),
        image: c.Image,
        labels: c.Labels ?? {},
        status: c.State as ContainerStatus,
        createdAt: new Date(c.Created * 1000).toISOString(),
      }));
    } catch (err) {
      this.#fail(err, "list containers");
    }
  }

  async putArchive(id: string, path: string, tar: Readable | Buffer): Promise<void> {
    try {
      await this.docker.getContainer(id).putArchive(tar, { path });
    } catch (err) {
      this.#fail(err, "copy into container");
    }
  }

  async getArchive(id: string, path: string): Promise<Readable | undefined> {
    try {
      return (await this.docker.getContainer(id).getArchive({ path })) as Readable;
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 404) return undefined;
      this.#fail(err, "copy from container");
    }
  }

  async openProcess(id: string, argv: string[]): Promise<ProcessChannel> {
    let socket: Duplex;
    try {
      const exec = await this.docker.getContainer(id).exec({
        Cmd: argv,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      socket = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    } catch (err) {
      this.#fail(err, "exec");
    }
    return hijackedChannel(socket);
  }

  /**
   * The agent's own stdin/stdout, for the one client that creates the sandbox: no exec, no relay
   * process. Only for a container this engine created from an image whose agent serves its stdio
   * (LABEL.agentStdio), and only once: the engine closes the container's stdin when that client
   * detaches (StdinOnce), so it is never shared. Otherwise undefined (use openProcess).
   */
  async attachAgent(id: string): Promise<ProcessChannel | undefined> {
    const created = this.#created.get(id);
    if (!created?.stdio) return undefined;
    created.stdio = false;
    let socket: Duplex;
    try {
      socket = (await this.docker
        .getContainer(id)
        .attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    } catch (err) {
      this.#fail(err, "attach");
    }
    return hijackedChannel(socket);
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 404) return false;
      this.#fail(err, "inspect image");
    }
  }

  async buildImage(context: Readable, tag: string, onProgress: (line: string) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(context, { t: tag, rm: true, forcerm: true });
    } catch (err) {
      this.#fail(err, "build image");
    }
    await this.#follow(stream, onProgress, `build image ${tag}`);
  }

  async importImage(rootfs: Readable, tag: string): Promise<void> {
    const [repo, version] = splitTag(tag);
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.importImage(rootfs, { repo, tag: version });
    } catch (err) {
      this.#fail(err, "import image");
    }
    await this.#follow(stream, () => {}, `import image ${tag}`);
  }

  /** Waits for an engine progress stream to end; an `error` event in it fails the call. */
  #follow(stream: NodeJS.ReadableStream, onProgress: (line: string) => void, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, events: { error?: string }[]) => {
          const failed = err ?? events.find((e) => e.error);
          if (failed) reject(new EngineError(`${what}: ${"error" in failed ? failed.error : String(failed)}`));
          else resolve();
        },
        (event: { stream?: string; status?: string; error?: string }) => {
          const line = (event.stream ?? event.status ?? event.error ?? "").trimEnd();
          if (line) onProgress(line);
        },
      );
    });
  }

  async commitContainer(id: string, tag: string, labels: Record<string, string>): Promise<string> {
    const [repo, version] = splitTag(tag);
    try {
      const changes = Object.entries(labels).map(([k, v]) => `LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`);
      const container = this.docker.getContainer(id);
      const raw = await container.inspect();
      if (diskOf(raw.Config.Labels) !== undefined) {
        // The image must not name the source's disk: its sandboxes would inherit the label.
        changes.push(`LABEL ${DISK_LABEL.disk}=""`);
        return await this.#commitWithDisk(container, raw, repo, version, changes);
      }
      const result = (await container.commit({ repo, tag: version, pause: true, changes })) as {
        Id: string;
      };
      return result.Id;
    } catch (err) {
      this.#fail(err, "commit container");
    }
  }

  /**
   * A sandbox whose writable places are on its disk (disks.ts): the engine's commit does not
   * see volumes, so their content is copied into a second layer over the committed rootfs
   * (read while the sandbox is paused, as one moment). Files of the image that the sandbox
   * deleted from those places come back in the snapshot.
   */
  async #commitWithDisk(
    container: Dockerode.Container,
    raw: Dockerode.ContainerInspectInfo,
    repo: string,
    version: string,
    changes: string[],
  ): Promise<string> {
    const disk = diskOf(raw.Config.Labels);
    // Stopped since a host reboot: its disk is mounted again for the copy.
    if (disk !== undefined && !raw.State.Running) await this.#disks.ensureMounted(disk);
    const running = raw.State.Running && !raw.State.Paused;
    if (running) await container.pause();
    let temp: Dockerode.Container | undefined;
    try {
      const base = (await container.commit({ repo, tag: version, pause: false, changes })) as { Id: string };
      // Never started: created with the image's own config, which its commit keeps.
      temp = await this.docker.createContainer({
        Image: base.Id,
        HostConfig: { NetworkMode: "none", LogConfig: { Type: "none", Config: {} } },
      });
      const places = (raw.Mounts ?? [])
        .filter((m) => m.Source.startsWith(`${DISK_ROOT}/`))
        .map((m) => m.Destination)
        .sort();
      for (const place of places) {
        const tar = (await container.getArchive({ path: place })) as Readable;
        await temp.putArchive(tar, { path: place.slice(0, place.lastIndexOf("/")) || "/" });
      }
      if (running) await container.unpause();
      const result = (await temp.commit({ repo, tag: version, pause: false, changes })) as { Id: string };
      return result.Id;
    } finally {
      if (running) await container.unpause().catch(() => {});
      await temp?.remove({ force: true }).catch(() => {});
    }
  }

  async listImages(labels: Record<string, string>): Promise<ImageSummary[]> {
    try {
      const raw = await this.docker.listImages({ filters: { label: labelFilters(labels) } });
      return raw.map((i) => ({
        id: i.Id,
        tags: i.RepoTags ?? [],
        labels: i.Labels ?? {},
        createdAt: new Date(i.Created * 1000).toISOString(),
        sizeBytes: i.Size,
      }));
    } catch (err) {
      this.#fail(err, "list images");
    }
  }

  async removeImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).remove();
    } catch (err) {
      const e = err as EngineHttpError;
      if (e.statusCode === 404) return;
      if (e.statusCode === 409)
        throw new ConflictError(`${ref} is in use by a sandbox: delete that sandbox first`, { cause: err });
      this.#fail(err, "remove image");
    }
  }

  async createVolume(
    name: string,
    labels: Record<string, string>,
    owner: string,
    image: string,
  ): Promise<VolumeSummary> {
    let raw: RawVolume;
    try {
      raw = (await this.docker.createVolume({ Name: name, Labels: labels })) as unknown as RawVolume;
    } catch (err) {
      this.#fail(err, "create volume");
    }
    // A new local volume's root belongs to root; a one-shot container with only CAP_CHOWN hands it over.
    let container: Dockerode.Container | undefined;
    try {
      container = await this.docker.createContainer({
        Image: image,
        User: "0:0",
        Entrypoint: ["chown", owner, "/volume"],
        Cmd: [],
        Labels: { "kiln.volume-init": name },
        HostConfig: {
          Mounts: [{ Type: "volume", Source: name, Target: "/volume" }],
          CapDrop: ["ALL"],
          CapAdd: ["CHOWN"],
          SecurityOpt: ["no-new-privileges:true"],
          NetworkMode: "none",
          LogConfig: { Type: "none", Config: {} },
        },
      });
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      if (StatusCode !== 0) throw new EngineError(`preparing volume ${name}: chown exited with ${StatusCode}`);
    } catch (err) {
      await container?.remove({ force: true }).catch(() => {});
      container = undefined;
      await this.docker
        .getVolume(name)
        .remove()
        .catch(() => {});
      this.#fail(err, "prepare volume");
    } finally {
      await container?.remove({ force: true }).catch(() => {});
    }
    return volumeSummary(raw);
  }

  async listVolumes(labels: Record<string, string>): Promise<VolumeSummary[]> {
    try {
      const raw = (await this.docker.listVolumes({ filters: { label: labelFilters(labels) } })) as {
        Volumes: RawVolume[] | null;
      };
      return (raw.Volumes ?? []).map(volumeSummary);
    } catch (err) {
      this.#fail(err, "list volumes");
    }
  }

  async inspectVolume(name: string): Promise<VolumeSummary | undefined> {
    try {
      return volumeSummary((await this.docker.getVolume(name).inspect()) as unknown as RawVolume);
    } catch (err) {
      if ((err as EngineHttpError).statusCode === 404) return undefined;
      this.#fail(err, "inspect volume");
    }
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (err) {
      const e = err as EngineHttpError;
      if (e.statusCode === 404) return;
      if (e.statusCode === 409) throw new ConflictError(`Volume "${name}" is in use by a sandbox`, { cause: err });
      this.#fail(err, "remove volume");
    }
  }
}

interface RawVolume {
  Name: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

function volumeSummary(raw: RawVolume): VolumeSummary {
  return { name: raw.Name, labels: raw.Labels ?? {}, createdAt: raw.CreatedAt ?? "" };
}

/** An empty value filters on the label's presence. */
function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === "" ? k : `${k}=${v}`));
}

function splitTag(tag: string): [string, string] {
  const at = tag.lastIndexOf(":");
  return at > tag.lastIndexOf("/") ? [tag.slice(0, at), tag.slice(at + 1)] : [tag, "latest"];
}

/**
 * Wraps a hijacked exec socket as a Duplex: writes go to the process's stdin, reads yield its
 * demultiplexed stdout, and its stderr is kept (bounded) for error messages.
 */
function hijackedChannel(socket: Duplex): ProcessChannel {
  let stderr = "";
  const stream: Duplex = new Duplex({
    write(chunk, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    read() {
      socket.resume();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  const demuxer = new StreamDemuxer(
    (chunk) => {
      if (!stream.push(chunk)) socket.pause();
    },
    (chunk) => {
      if (stderr.length < STDERR_KEEP_BYTES) stderr += chunk.toString("utf8");
    },
  );
  socket.on("data", (chunk: Buffer) => demuxer.push(chunk));
  socket.on("end", () => stream.push(null));
  socket.on("close", () => {
    if (!stream.readableEnded) stream.push(null);
  });
  socket.on("error", (err) => stream.destroy(err));
  return {
    stream,
    stderr: () => stderr,
    close: () => socket.destroy(),
    // The hijacked exec stream is a net.Socket: idle, it must not keep Node's event loop alive.
    ref: () => (socket as Partial<Socket>).ref?.(),
    unref: () => (socket as Partial<Socket>).unref?.(),
  };
}
