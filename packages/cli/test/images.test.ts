// kiln image build|ls|rm through the kiln binary in local mode (this machine's Docker engine).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kiln, kilnJson } from "./helpers.ts";

const name = `cli-img-${process.pid}-${Date.now().toString(36)}`;
const work = await mkdtemp(join(tmpdir(), "kiln-cli-image-"));
afterAll(async () => {
  await kiln(["image", "rm", name]);
  await rm(work, { recursive: true, force: true });
});

describe("image", () => {
  it("build -f SPEC.json builds (progress on stderr), ls lists it, an unchanged spec gives the same tag, rm deletes it", async () => {
    const file = join(work, "kiln-image.json");
    await writeFile(file, JSON.stringify({ name, run: ["echo cli > /etc/kiln-cli-image"] }));
    const built = await kiln(["image", "build", "-f", file]);
    expect(built.code).toBe(0);
    const [printedName, tag] = built.stdout.trim().split(" ");
    expect(printedName).toBe(name);
    expect(tag).toMatch(new RegExp(`^kiln-image-${name}:[0-9a-f]{16}$`));
    expect(built.stderr).toContain("[build]");

    expect(await kilnJson(["image", "build", "-f", file])).toEqual({ name, tag });
    const { images } = await kilnJson<{ images: { name: string; tag: string }[] }>(["image", "ls"]);
    expect(images).toContainEqual(expect.objectContaining({ name, tag }));
    expect((await kiln(["image", "ls"])).stdout).toContain(name);

    const removed = await kiln(["image", "rm", name]);
    expect(removed.code).toBe(0);
    const after = await kilnJson<{ images: { name: string }[] }>(["image", "ls"]);
    expect(after.images.map((i) => i.name)).not.toContain(name);
  }, 300_000);

  it("a failing step exits 1 with the step's output; --dockerfile needs --name", async () => {
    const file = join(work, "bad.json");
    await writeFile(file, JSON.stringify({ name: `${name}-bad`, run: ["echo cli-step-marker; exit 5"] }));
    const failed = await kiln(["image", "build", "-f", file]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("cli-step-marker");
    const usage = await kiln(["image", "build", "--dockerfile", join(work, "Dockerfile")]);
    expect(usage.code).toBe(2);
  }, 300_000);
});
