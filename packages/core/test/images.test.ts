import { describe, expect, inject, it } from "vitest";
import { RUNTIME_REPO, removeOlderRuntimeImages } from "../src/images/runtime-image.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();

describe("runtime image", () => {
  it("is found again, with the same content-hash tag, once built", async () => {
    const tag = await kiln.images.ensure();
    expect(tag).toMatch(/^kiln-runtime:[0-9a-f]{16}$/);
    expect(await kiln.images.ensure()).toBe(tag);
    expect(tag).toBe(inject("runtimeImage"));
  });

  it("drops older runtime images no sandbox uses, and keeps the current one and those in use", async () => {
    const current = inject("runtimeImage");
    const source = await sandbox(kiln);
    await source.stop();
    // Two "older" runtime images: commits keep the runtime image's kiln.image=runtime label.
    const unused = `${RUNTIME_REPO}:test-unused-${process.pid}`;
    const used = `${RUNTIME_REPO}:test-used-${process.pid}`;
    await kiln.engine.commitContainer(source.id, unused, {});
    await kiln.engine.commitContainer(source.id, used, {});
    const user = await kiln.engine.createContainer({
      name: `kiln-image-user-${process.pid}`,
      image: used,
      labels: {},
      env: {},
      cpus: 1,
      memoryMb: 64,
      pids: 16,
      network: "none",
      volumes: [],
    });
    try {
      const removed = await removeOlderRuntimeImages(kiln.engine, current);
      expect(removed).toContain(unused);
      expect(removed).not.toContain(used);
      expect(await kiln.engine.imageExists(unused)).toBe(false);
      expect(await kiln.engine.imageExists(used)).toBe(true);
      expect(await kiln.engine.imageExists(current)).toBe(true);
    } finally {
      await kiln.engine.removeContainer(user);
      await kiln.engine.removeImage(used);
      await kiln.engine.removeImage(unused);
    }
  });
});
