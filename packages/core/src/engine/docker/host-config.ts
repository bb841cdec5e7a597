/**
 * The hardened container configuration every sandbox gets on Docker. Security defaults from
 * design/security.md live here and nowhere else: non-root, no capabilities, no-new-privileges,
 * the engine's default seccomp profile (applied by not overriding it), no network unless asked,
 * limits always on, bounded engine logs, no restart policy (a sweeper owns cleanup).
 */
import type Dockerode from "dockerode";
import { CONTAINER_USER, DEFAULT_MAX_FILE_BYTES, DEFAULT_NOFILE, DEFAULT_TMPFS_MB, WORKDIR } from "../../defaults.ts";
import type { ContainerSpec } from "../engine.ts";

const MIB = 1024 * 1024;

/**
 * The bridge network sandboxes with `network: "egress"` join: Kiln's own, with inter-container
 * traffic disabled, so egress sandboxes cannot reach each other.
 */
export const EGRESS_NETWORK = "kiln-egress";

/**
 * Destinations an egress sandbox may never reach, enforced by packet filter rules inside its own
 * network namespace (the sandbox has no CAP_NET_ADMIN to undo them): link-local (cloud metadata
 * at 169.254.169.254), the private ranges the host and its neighbours live on (the bridge gateway
 * is the host), carrier-grade NAT, multicast. Loopback stays open, and so does DNS (port 53):
 * the engine's resolver forwards queries from inside the sandbox's namespace to the host's
 * resolvers, which often sit on a private address.
 */
export const EGRESS_BLOCKED_V4 = [
  "169.254.0.0/16",
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "224.0.0.0/4",
];
export const EGRESS_BLOCKED_V6 = ["fc00::/7", "fe80::/10", "ff00::/8"];

/** The shell script a one-shot helper runs in the sandbox's network namespace. */
export function egressFirewallScript(): string {
  const v4 = EGRESS_BLOCKED_V4.map((net) => `iptables -A OUTPUT -d ${net} -j REJECT`).join(" && ");
  const v6 = EGRESS_BLOCKED_V6.map((net) => `ip6tables -A OUTPUT -d ${net} -j REJECT`).join(" && ");
  // IPv6 may be disabled in the namespace; then there is nothing to filter there.
  const open = (tool: string) =>
    `${tool} -A OUTPUT -o lo -j ACCEPT && ${tool} -A OUTPUT -p udp --dport 53 -j ACCEPT && ${tool} -A OUTPUT -p tcp --dport 53 -j ACCEPT`;
  return `${open("iptables")} && ${v4} && { ! ip6tables -L OUTPUT >/dev/null 2>&1 || { ${open("ip6tables")} && ${v6}; }; }`;
}

export function containerCreateOptions(spec: ContainerSpec): Dockerode.ContainerCreateOptions {
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
    NetworkMode: spec.network === "none" ? "none" : EGRESS_NETWORK,
    IpcMode: "private",
    CgroupnsMode: "private",
    Privileged: false,
    ReadonlyRootfs: false,
    RestartPolicy: { Name: "no" },
    // The agent writes little; cap the engine's copy so nothing grows without bound on the host.
    LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
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
  if (spec.diskMb !== undefined) hostConfig.StorageOpt = { size: `${spec.diskMb}M` };
  return {
    name: spec.name,
    Image: spec.image,
    Labels: spec.labels,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    User: CONTAINER_USER,
    WorkingDir: WORKDIR,
    Hostname: "sandbox",
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StopSignal: "SIGTERM",
    HostConfig: hostConfig,
  };
}
