/**
 * Snapshots: a sandbox's filesystem committed as an engine image, named by the user.
 */

import type { AgentConnection } from "../agent/connection.ts";
import type { Engine } from "../engine/engine.ts";
import { LABEL } from "../engine/labels.ts";
import { AgentUnavailableError, ConflictError, SandboxNotFoundError, SnapshotNotFoundError } from "../errors.ts";
import type { SnapshotInfo } from "../types.ts";
import { requireName } from "../validate.ts";

export const SNAPSHOT_REPO = "kiln-snapshot";
export const snapshotTag = (name: string) => `${SNAPSHOT_REPO}:${name}`;
const SOURCE_LABEL = "kiln.snapshot-source";

export class Snapshots {
  readonly #engine: Engine;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  /**
   * Saves the Python contexts' variables into the sandbox's filesystem (when it is running),
   * then commits the filesystem (paused for the commit only) under `name`.
   */
  async take(containerId: string, name: string, connect: () => Promise<AgentConnection>): Promise<SnapshotInfo> {
    const valid = requireName("name", name);
    if (await this.#engine.imageExists(snapshotTag(valid))) {
      throw new ConflictError(`A snapshot named "${valid}" already exists: delete it first or pick another name`);
    }
    const details = await this.#engine.inspectContainer(containerId);
    if (!details) throw new SandboxNotFoundError(containerId);
    let state: SnapshotInfo["state"];
    if (details.status === "running") {
      const reply = await (await connect()).call({ type: "snapshot_prepare" });
      if (reply.header.type !== "ok") {
        throw new AgentUnavailableError(`could not save interpreter state: ${String(reply.header.message)}`);
      }
      state = reply.header.contexts as SnapshotInfo["state"];
    }
    await this.#engine.commitContainer(containerId, snapshotTag(valid), {
      [LABEL.image]: "snapshot",
      [LABEL.snapshot]: valid,
      [SOURCE_LABEL]: containerId,
    });
    const info = (await this.list()).find((s) => s.name === valid);
    if (!info) throw new SnapshotNotFoundError(valid);
    return state === undefined ? info : { ...info, state };
  }

  async list(): Promise<SnapshotInfo[]> {
    const images = await this.#engine.listImages({ [LABEL.image]: "snapshot" });
    return images
      .filter((i) => i.labels[LABEL.snapshot] && i.tags.includes(snapshotTag(i.labels[LABEL.snapshot] as string)))
      .map((i) => ({
        name: i.labels[LABEL.snapshot] as string,
        createdAt: i.createdAt,
        sizeBytes: i.sizeBytes,
        ...(i.labels[SOURCE_LABEL] ? { sourceSandboxId: i.labels[SOURCE_LABEL] } : {}),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The image to start a sandbox from; SnapshotNotFoundError when absent. */
  async image(name: string): Promise<string> {
    const valid = requireName("snapshot", name);
    if (!(await this.#engine.imageExists(snapshotTag(valid)))) throw new SnapshotNotFoundError(valid);
    return snapshotTag(valid);
  }

  /** Refused with ConflictError while a sandbox was created from it. */
  async delete(name: string): Promise<void> {
    const valid = requireName("name", name);
    if (!(await this.#engine.imageExists(snapshotTag(valid)))) throw new SnapshotNotFoundError(valid);
    await this.#engine.removeImage(snapshotTag(valid));
  }
}
