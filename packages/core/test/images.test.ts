import { Readable } from "node:stream";
import { pack } from "tar-stream";
import { describe, expect, inject, it } from "vitest";
import { CORE_VERSION, CORE_VERSION_LABEL, RUNTIME_REPO } from "../src/images/runtime-image.ts";
import { Kiln } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();

/** A small image on top of the runtime image (it inherits its labels; `labels` override them). */
async function derived(tag: string, labels: Record<string, string>): Promise<string> {
  const archive = pack();
  const lines = Object.entries(labels).map(([k, v]) => `LABEL ${k}=${v}`);
  archive.entry({ name: "Dockerfile" }, `FROM ${inject("runtimeImage")}\n${lines.join("\n")}\n`);
  archive.finalize();
  await kiln.engine.buildImage(Readable.from(archive), tag, () => {});
  return tag;
}

describe("runtime image", () => {
  it("is found again, with the same content-hash tag, once built", async () => {
    const tag = await kiln.images.ensure();
    expect(tag).toMatch(/^kiln-runtime:[0-9a-f]{16}$/);
    expect(await kiln.images.ensure()).toBe(tag);
    expect(tag).toBe(inject("runtimeImage"));
  });

  it("prune() removes only this version's unused runtime images: never another version's, a pinned one, or one in use", async () => {
    const current = inject("runtimeImage");
    const run = `${process.pid}-${Date.now()}`;
    // Another @kiln/core version's runtime image (another app on the same engine).
    const otherVersion = await derived(`${RUNTIME_REPO}:test-other-version-${run}`, {
      [CORE_VERSION_LABEL]: "0.0.0-another-app",
    });
    // Ours (same version label), built earlier: unused, pinned by a Kiln, and in use by a sandbox.
    const unused = await derived(`${RUNTIME_REPO}:test-unused-${run}`, { "test-image": "unused" });
    const pinned = await derived(`${RUNTIME_REPO}:test-pinned-${run}`, { "test-image": "pinned" });
    const used = await derived(`${RUNTIME_REPO}:test-used-${run}`, { "test-image": "used" });
    const pinnedKiln = new Kiln({ engine: kiln.engine, image: pinned });
    try {
      expect((await kiln.engine.listImages({ [CORE_VERSION_LABEL]: CORE_VERSION })).length).toBeGreaterThan(0);
      const user = await sandbox(kiln, { image: used });
      await user.stop(); // a stopped sandbox still holds its image
      // ensure() (the build path) removes nothing.
      expect(await pinnedKiln.images.ensure()).toBe(current);
      for (const tag of [otherVersion, unused, pinned, used]) expect(await kiln.engine.imageExists(tag)).toBe(true);

      const removed = await pinnedKiln.images.prune();
      expect(removed).toContain(unused);
      expect(removed).not.toContain(otherVersion);
      expect(removed).not.toContain(pinned);
      expect(removed).not.toContain(used);
      expect(removed).not.toContain(current);
      expect(await kiln.engine.imageExists(unused)).toBe(false);
      for (const tag of [otherVersion, pinned, used, current]) expect(await kiln.engine.imageExists(tag)).toBe(true);
      await user.delete();
    } finally {
      await pinnedKiln.close();
      for (const tag of [otherVersion, unused, pinned, used]) await kiln.engine.removeImage(tag).catch(() => {});
    }
  });
});
