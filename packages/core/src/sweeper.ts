/**
 * Reclaims what a crashed Kiln process left behind and enforces lifecycle timers that live with
 * the engine (never only in a process): any running Kiln instance's sweep does the work.
 * It only ever touches containers Kiln labelled.
 */
import { hostname } from "node:os";
import type { Engine } from "./engine/engine.ts";
import { CREATING_PREFIX, KIND_POOL, KIND_SANDBOX, LABEL } from "./engine/labels.ts";
import { isUnclaimedPool, type RecordReader } from "./sandbox/records.ts";

/** "<hostname>/<pid>": the owner label of pool containers made by this process. */
export function processOwner(): string {
  return `${hostname()}/${process.pid}`;
}

/** False only when the owner is a process on this host that no longer exists. */
export function ownerAlive(owner: string | undefined): boolean {
  if (!owner) return false;
  const slash = owner.lastIndexOf("/");
  const host = owner.slice(0, slash);
  const pid = Number(owner.slice(slash + 1));
  if (host !== hostname() || !Number.isInteger(pid)) return true; // another host's process: not ours to judge
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface SweepReport {
  orphansRemoved: string[];
  autoDeleted: string[];
  /** Engine helpers (egress network holders and guards) whose sandbox or owner is gone. */
  helpersRemoved: string[];
}

export async function sweep(engine: Engine, records: RecordReader, now = Date.now()): Promise<SweepReport> {
  const report: SweepReport = { orphansRemoved: [], autoDeleted: [], helpersRemoved: [] };
  const containers = await engine.listContainers({ [LABEL.kind]: "" });
  for (const c of containers) {
    // A cold create whose process died before it finished: nobody holds its id, and it has no name.
    if (
      c.labels[LABEL.kind] === KIND_SANDBOX &&
      c.name.startsWith(CREATING_PREFIX) &&
      !ownerAlive(c.labels[LABEL.creator])
    ) {
      if (await engine.removeContainer(c.id)) report.orphansRemoved.push(c.id);
      continue;
    }
    const pooled = c.labels[LABEL.kind] === KIND_POOL;
    const ownerGone = pooled && !ownerAlive(c.labels[LABEL.owner]);
    if (pooled && isUnclaimedPool(c)) {
      if (ownerGone && (await engine.removeContainer(c.id))) report.orphansRemoved.push(c.id);
      continue;
    }
    // A container that never started is stopped only once its creator is gone: while the creating
    // process lives it is a create in progress (disk, files, start), whatever its autoDeleteMs.
    const stopped =
      c.status === "exited" ||
      (c.status === "created" && !ownerAlive(c.labels[LABEL.creator] ?? c.labels[LABEL.owner]));
    // Records cost an archive read for claimed pool sandboxes: read one only when it decides something.
    if (!stopped && !ownerGone) continue;
    const record = await records.read(c).catch(() => undefined);
    // Claimed, but its owner died before the claim's record landed: nobody can reach it.
    if (pooled && !record && ownerGone) {
      if (await engine.removeContainer(c.id)) report.orphansRemoved.push(c.id);
      continue;
    }
    if (!stopped || record?.autoDeleteMs === undefined) continue;
    const details = await engine.inspectContainer(c.id);
    const stoppedAt = Date.parse(details?.finishedAt ?? "");
    const since = Number.isNaN(stoppedAt) || stoppedAt <= 0 ? Date.parse(c.createdAt) : stoppedAt;
    if (now - since >= record.autoDeleteMs && (await engine.removeContainer(c.id))) {
      records.forget(c.id);
      report.autoDeleted.push(c.id);
    }
  }
  report.helpersRemoved = await sweepHelpers(engine, now);
  return report;
}

/** The engine's helper containers (egress network holders, guards) that outlived their use. */
export async function sweepHelpers(engine: Engine, now = Date.now()): Promise<string[]> {
  return (await engine.reclaimHelpers?.(ownerAlive, now)) ?? [];
}
