/**
 * What Kiln writes on engine objects. Labels are the source of truth for sandboxes created
 * cold; they are fixed at creation, so a pooled container claimed later carries its sandbox's
 * metadata in a root-only file inside the container instead (see records.ts).
 */

export const LABEL = {
  /** "sandbox": created for a user; "pool": created warm by a pool (claimed or not). */
  kind: "kiln.kind",
  name: "kiln.name",
  language: "kiln.language",
  createdAt: "kiln.created-at",
  autoStopMs: "kiln.auto-stop-ms",
  autoDeleteMs: "kiln.auto-delete-ms",
  /** The network policy at creation ("none" | "egress" | JSON of { allow }). */
  network: "kiln.network",
  /** JSON of the resource limits at creation ({ cpus, memoryMb, pids, diskMb? }). */
  resources: "kiln.resources",
  /** Pool containers: the shape key a claim must match. */
  shape: "kiln.shape",
  /** Pool containers: "<hostname>/<pid>" of the process whose pool holds it. */
  owner: "kiln.owner",
  /**
   * Cold-created sandboxes: "<hostname>/<pid>" of the process that created it. While its name is
   * still `kiln-creating-<hex>` the create has not finished; the sweeper removes it once that process is gone.
   */
  creator: "kiln.creator",
  /** Images: "runtime" | "base" | "snapshot". */
  image: "kiln.image",
  /**
   * Images whose agent serves the client attached to its stdin/stdout ("1"): the creating host
   * talks to it that way, saving an exec (docker-engine.ts attachAgent). Inherited by images built
   * on the runtime image and by snapshots (a container carries its image's labels).
   */
  agentStdio: "kiln.agent-stdio",
  /** Snapshot images: the snapshot's name. */
  snapshot: "kiln.snapshot",
  /** Volumes created through kiln.volumes. */
  volume: "kiln.volume",
  /** User labels are stored under this prefix so they never collide with Kiln's own. */
  userPrefix: "kiln.label.",
} as const;

export const KIND_SANDBOX = "sandbox";
export const KIND_POOL = "pool";

/** Container names: named sandboxes `kiln.<name>`, unnamed `kiln-<hex>`, unclaimed pool `kiln-pool-<hex>`. */
export const NAMED_PREFIX = "kiln.";
export const POOL_PREFIX = "kiln-pool-";
/** An unnamed sandbox whose cold create has not finished yet (renamed to `kiln-<hex>` when it has). */
export const CREATING_PREFIX = "kiln-creating-";

export function containerNameFor(name: string | undefined, randomHex: string): string {
  return name === undefined ? `kiln-${randomHex}` : `${NAMED_PREFIX}${name}`;
}

export function userLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith(LABEL.userPrefix)) out[k.slice(LABEL.userPrefix.length)] = v;
  }
  return out;
}

export function prefixUserLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[`${LABEL.userPrefix}${k}`] = v;
  return out;
}
