// Warm pools per shape: `pool: [{ size }, { size, image }, { size, snapshot }]`, each create()
// claiming from the pool of its image or snapshot, in milliseconds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kiln, type Sandbox } from "../src/index.ts";
import { TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const setup = testKiln();
const imageName = uniqueName("pooled-img");
const snapName = uniqueName("pooled-snap");
let kiln: Kiln;
let imageTag: string;
const made: Sandbox[] = [];

beforeAll(async () => {
  ({ tag: imageTag } = await setup.images.build({ name: imageName, run: ["echo from-custom > /etc/kiln-pool-test"] }));
  const source = await setup.create({ labels: TEST_LABELS });
  await source.runCode("restored = 41");
  await source.snapshot(snapName);
  await source.delete();
  kiln = new Kiln({
    image: (await setup.images.ensure()) as string,
    pool: [{ size: 1 }, { size: 1, image: imageName }, { size: 1, snapshot: snapName }],
  });
  await kiln.pool?.filled();
}, 600_000);

afterAll(async () => {
  await Promise.all(made.map((s) => s.delete().catch(() => {})));
  await kiln?.close();
  await setup.snapshots.delete(snapName).catch(() => {});
  await setup.images.delete(imageName).catch(() => {});
});

async function timedCreate(options: Parameters<Kiln["create"]>[0]): Promise<{ sb: Sandbox; ms: number }> {
  const started = performance.now();
  const sb = await kiln.create({ ...options, labels: TEST_LABELS });
  const ms = performance.now() - started;
  made.push(sb);
  return { sb, ms };
}

async function kindOf(sb: Sandbox): Promise<string | undefined> {
  return (await kiln.engine.inspectContainer(sb.id))?.labels["kiln.kind"];
}

describe("warm pools per shape", () => {
  it("fills every pool; pool.size and pool.ready count all of them", () => {
    expect(kiln.pool?.size).toBe(3);
    expect(kiln.pool?.ready).toBe(3);
  });

  it("an image's pool serves create({ image }) in milliseconds", async () => {
    const { sb, ms } = await timedCreate({ image: imageName });
    expect(await kindOf(sb)).toBe("pool");
    expect((await sb.info()).image).toBe(imageTag);
    expect((await sb.exec("cat /etc/kiln-pool-test")).stdout).toBe("from-custom\n");
    console.log(`claim from an image pool: ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(1000);
  });

  it("a snapshot's pool serves create({ snapshot }) in milliseconds, with its Python state already loaded", async () => {
    const { sb, ms } = await timedCreate({ snapshot: snapName });
    expect(await kindOf(sb)).toBe("pool");
    console.log(`claim from a snapshot pool: ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(1000);
    // The member loaded the snapshot's variables before it counted as ready: the first run does not wait for a restore.
    const started = performance.now();
    expect((await sb.runCode("restored + 1")).results[0]?.text).toBe("42");
    console.log(`first runCode in a snapshot-pool sandbox: ${(performance.now() - started).toFixed(0)} ms`);
  });

  it("a default create() claims from the default pool, never from the image's or snapshot's", async () => {
    const { sb } = await timedCreate({});
    expect(await kindOf(sb)).toBe("pool");
    expect((await sb.exec("test -e /etc/kiln-pool-test; echo $?")).stdout).toBe("1\n");
    expect((await sb.runCode("'restored' in globals()")).results[0]?.text).toBe("False");
    await kiln.pool?.filled();
    expect(kiln.pool?.ready).toBe(3);
  });

  it("deleting an image or a snapshot drains its pool first (its members would hold it)", async () => {
    await Promise.all(made.splice(0).map((s) => s.delete()));
    await kiln.images.delete(imageName);
    expect(await kiln.engine.imageExists(imageTag)).toBe(false);
    await kiln.snapshots.delete(snapName);
    expect((await kiln.snapshots.list()).some((s) => s.name === snapName)).toBe(false);
    // The default pool is untouched, and a create of the deleted image fails clearly.
    expect(kiln.pool?.ready).toBe(1);
    await expect(kiln.create({ image: imageName, labels: TEST_LABELS })).rejects.toThrow(/images\.build/);
  });
});
