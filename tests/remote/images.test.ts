// Custom images through a real Kiln server: the same kiln.images API as in-process.
import { ImageBuildError, type ImageProgressEvent, NotSupportedError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { remoteKiln, sandbox, uniqueName } from "./helpers.ts";

const kiln = remoteKiln();

describe("remote images", () => {
  it("builds with progress, lists, creates a sandbox from the name, deletes", async () => {
    const name = uniqueName("rimg").toLowerCase();
    const events: ImageProgressEvent[] = [];
    const built = await kiln.images.build(
      { name, run: ["echo remote > /etc/kiln-remote"], files: { "/etc/kiln-remote-file": "file" } },
      { onProgress: (e) => events.push(e) },
    );
    try {
      expect(built.tag).toMatch(new RegExp(`^kiln-image-${name}:`));
      expect(events.length).toBeGreaterThan(0);
      expect((await kiln.images.list()).map((i) => i.name)).toContain(name);
      const sb = await sandbox(kiln, { image: name });
      expect((await sb.exec("cat /etc/kiln-remote /etc/kiln-remote-file")).stdout).toBe("remote\nfile");
      await sb.delete();
    } finally {
      await kiln.images.delete(name);
    }
    expect((await kiln.images.list()).map((i) => i.name)).not.toContain(name);
  }, 300_000);

  it("a failing step is ImageBuildError with its output; a Dockerfile build is refused", async () => {
    const err = await kiln.images
      .build({ name: uniqueName("rbad").toLowerCase(), run: ["echo remote-marker; exit 2"] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageBuildError);
    expect((err as Error).message).toContain("remote-marker");
    await expect(kiln.images.build({ name: "x", dockerfile: "Dockerfile", context: "." })).rejects.toBeInstanceOf(
      NotSupportedError,
    );
  }, 300_000);
});
