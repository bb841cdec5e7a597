/**
 * The hardened container configuration every sandbox gets on Docker. Security defaults from
 * docs/security.md live here and nowhere else: non-root, no capabilities, no-new-privileges,
 * the engine's default seccomp profile (applied by not overriding it), no network unless asked,
 * limits always on, bounded engine logs, no restart policy (a sweeper owns cleanup).
 */
import type Dockerode from "dockerode";
import { CONTAINER_USER, DEFAULT_MAX_FILE_BYTES, DEFAULT_NOFILE, DEFAULT_TMPFS_MB, WORKDIR } from "../../defaults.ts";
import type { ContainerSpec } from "../engine.ts";
import { DISK_LABEL, type Disk } from "./disks.ts";

const MIB = 1024 * 1024;

/**
 * `networkHolder`: for `network: "egress"`, the container whose network namespace (filtered
 * before the sandbox ever starts, see egress.ts) the sandbox shares.
 * `disk`: on an engine without storage quotas, the loop-mounted disk that caps its writable
 * places (disks.ts); then spec.diskMb is not passed to the engine.
 */
export function containerCreateOptions(
  spec: ContainerSpec,
  networkHolder?: string,
  disk?: Disk,
): Dockerode.ContainerCreateOptions {
  const memoryBytes = spec.memoryMb * MIB;
  // CgroupnsMode (engine API 1.41+) is missing from dockerode's types.
  const hostConfig: Dockerode.HostConfig & { CgroupnsMode: "private" } = {
    Memory: memoryBytes,
    // Swap equal to memory means no swap: a memory bomb is killed, not paged to the host's disk.
    MemorySwap: memoryBytes,
    NanoCpus: Math.round(spec.cpus * 1e9),
    PidsLimit: spec.pids,
    Ulimits: [
      { Name: "nofile", Soft: DEFAULT_NOFILE, Hard: DEFAULT_NOFILE },
      { Name: "fsize", Soft: DEFAULT_MAX_FILE_BYTES, Hard: DEFAULT_MAX_FILE_BYTES },
      { Name: "core", Soft: 0, Hard: 0 },
    ],
    CapDrop: ["ALL"],
    // The agent's one capability, to run user code under another uid than its own (CONTAINER_USER).
    CapAdd: ["SETUID"],
    SecurityOpt: ["no-new-privileges:true"],
    NetworkMode: networkHolder === undefined ? "none" : `container:${networkHolder}`,
    IpcMode: "private",
    CgroupnsMode: "private",
    Privileged: false,
    ReadonlyRootfs: false,
    RestartPolicy: { Name: "no" },
    // No engine log: the agent's stdout is the creating host's channel (attachAgent), which the
    // engine would otherwise copy to disk byte for byte; its stderr reaches that host's channel.
    LogConfig: { Type: "none", Config: {} },
    Tmpfs: {
      "/tmp": `rw,nosuid,nodev,size=${DEFAULT_TMPFS_MB}m,mode=1777`,
      // The agent's socket lives on a tmpfs so a restarted or restored sandbox never sees a stale one.
      // Root's, mode 0700: user code (uid 1000) can neither connect to nor replace the socket.
      "/run/kiln": "rw,nosuid,nodev,noexec,size=1m,uid=0,gid=0,mode=0700",
    },
    Mounts: spec.volumes.map((v) => ({
      Type: "volume" as const,
      Source: v.volume,
      Target: v.mountPath,
      ReadOnly: v.readOnly,
    })),
  };
  if (disk) {
    // The writable places are on the disk; /run/lock (the image's other world-writable place) a tmpfs.
    // A user volume mounted on one of those places replaces it there.
    const taken = new Set(spec.volumes.map((v) => v.mountPath));
    hostConfig.Mounts = [...(hostConfig.Mounts ?? []), ...disk.mounts.filter((m) => !taken.has(m.Target))];
    hostConfig.Tmpfs = { ...hostConfig.Tmpfs, "/run/lock": "rw,nosuid,nodev,noexec,size=1m,mode=1777" };
  } else if (spec.diskMb !== undefined) hostConfig.StorageOpt = { size: `${spec.diskMb}M` };
  // gVisor: the engine's "runsc" runtime (registered by setup.sh with --network=none, the only
  // network mode its netstack runs with on these kernels; create-options refuses the others).
  if (spec.runtime === "gvisor") hostConfig.Runtime = "runsc";
  return {
    name: spec.name,
    Image: spec.image,
    Labels: disk ? { ...spec.labels, [DISK_LABEL.disk]: disk.id } : spec.labels,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    User: CONTAINER_USER,
    WorkingDir: WORKDIR,
    // A sandbox in its holder's namespace has the holder's hostname (also "sandbox").
    ...(networkHolder === undefined ? { Hostname: "sandbox" } : {}),
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    // The agent's stdin is open for the one client that attaches (the creating host) and closed
    // once it detaches, so no later client can write into a half-read frame.
    OpenStdin: true,
    StdinOnce: true,
    StopSignal: "SIGTERM",
    HostConfig: hostConfig,
  };
}
