/**
 * Mastra checkpoints on Kiln snapshots. Mastra writes a checkpoint name again and again; Kiln
 * snapshot names are write-once (and one in use by a sandbox cannot be deleted), so each
 * snapshot() writes `<checkpoint>.<time>` and the newest one is the checkpoint.
 */
import type { Kiln } from "@kiln/core";
import { KilnError } from "@kiln/core";

/** Kiln names are at most 63 characters; 9 are the time stamp and one the dot before it. */
const STAMP_CHARS = 9;
const PREFIX_MAX = 63 - STAMP_CHARS - 1;
const STAMP = /^[0-9a-z]{9}$/;

const prefixOf = (checkpoint: string) => `${checkpoint.slice(0, PREFIX_MAX)}.`;

/** A new, unique snapshot name for `checkpoint`; names sort by time. */
export function checkpointVersion(checkpoint: string, now = Date.now()): string {
  return `${prefixOf(checkpoint)}${now.toString(36).padStart(STAMP_CHARS, "0")}`;
}

function versionsOf(names: string[], checkpoint: string): string[] {
  const prefix = prefixOf(checkpoint);
  return names.filter((n) => n.startsWith(prefix) && STAMP.test(n.slice(prefix.length))).sort();
}

/** The newest snapshot of `checkpoint`, if there is one. */
export async function latestCheckpoint(kiln: Kiln, checkpoint: string): Promise<string | undefined> {
  const names = (await kiln.snapshots.list()).map((s) => s.name);
  return versionsOf(names, checkpoint).at(-1);
}

/** Deletes every version of `checkpoint` but `keep`; versions a sandbox still uses are left for later. */
export async function pruneCheckpoint(kiln: Kiln, checkpoint: string, keep: string): Promise<void> {
  const names = (await kiln.snapshots.list()).map((s) => s.name);
  for (const name of versionsOf(names, checkpoint)) {
    if (name === keep) continue;
    await kiln.snapshots.delete(name).catch((err: unknown) => {
      if (!(KilnError.isInstance(err) && (err.code === "CONFLICT" || err.code === "SNAPSHOT_NOT_FOUND"))) throw err;
    });
  }
}
