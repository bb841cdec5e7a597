/**
 * Named persistent volumes that outlive any sandbox. Kiln only lists and deletes volumes it
 * created (labelled), never a user's other volumes.
 */
import { SANDBOX_USER } from "../defaults.ts";
import type { Engine } from "../engine/engine.ts";
import { LABEL } from "../engine/labels.ts";
import { ConflictError, VolumeNotFoundError } from "../errors.ts";
import type { VolumeInfo } from "../types.ts";
import { requireName } from "../validate.ts";

/** Volumes are stored as engine volumes named `kiln-vol-<name>`. */
export const volumeEngineName = (name: string) => `kiln-vol-${name}`;

export class Volumes {
  readonly #engine: Engine;
  readonly #image: () => Promise<string>;

  /** `image`: an image to run the one-shot ownership fix with (the runtime image). */
  constructor(engine: Engine, image: () => Promise<string>) {
    this.#engine = engine;
    this.#image = image;
  }

  async create(name: string): Promise<VolumeInfo> {
    const valid = requireName("name", name);
    if (await this.#engine.inspectVolume(volumeEngineName(valid))) {
      throw new ConflictError(`A volume named "${valid}" already exists`);
    }
    const created = await this.#engine.createVolume(
      volumeEngineName(valid),
      { [LABEL.volume]: valid },
      SANDBOX_USER,
      await this.#image(),
    );
    return { name: valid, createdAt: created.createdAt, labels: {} };
  }

  async list(): Promise<VolumeInfo[]> {
    const volumes = await this.#engine.listVolumes({ [LABEL.volume]: "" });
    return volumes
      .map((v) => ({ name: v.labels[LABEL.volume] as string, createdAt: v.createdAt, labels: {} }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Refused with ConflictError while a sandbox (running or stopped) mounts it. */
  async delete(name: string): Promise<void> {
    const valid = requireName("name", name);
    const volume = await this.#engine.inspectVolume(volumeEngineName(valid));
    if (!volume || volume.labels[LABEL.volume] !== valid) throw new VolumeNotFoundError(valid);
    await this.#engine.removeVolume(volumeEngineName(valid));
  }

  /** Throws VolumeNotFoundError unless every named volume exists; returns their engine names. */
  async resolve(names: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of names) {
      const volume = await this.#engine.inspectVolume(volumeEngineName(name));
      if (!volume || volume.labels[LABEL.volume] !== name) throw new VolumeNotFoundError(name);
      out.set(name, volumeEngineName(name));
    }
    return out;
  }
}
