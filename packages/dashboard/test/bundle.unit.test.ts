// The dashboard's production build (vite.config.ts, written to memory) takes from the workspace
// only browser-safe code: of @kiln/core just the vocabulary module, and no Node built-in at all
// (the config's browserOnly plugin fails the build on one, shown here with an entry that does).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { build, type Rollup } from "vite";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const repo = join(root, "../..");
const configFile = join(root, "vite.config.ts");

async function bundle(input?: string): Promise<Rollup.RollupOutput> {
  const out = await build({
    configFile,
    logLevel: "silent",
    build: { write: false, ...(input === undefined ? {} : { rollupOptions: { input } }) },
  });
  return (Array.isArray(out) ? out[0] : out) as Rollup.RollupOutput;
}

const scratch = await mkdtemp(join(tmpdir(), "kiln-dashboard-bundle-"));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe("the dashboard's build", () => {
  it("bundles only browser-safe workspace code: @kiln/core's vocabulary, nothing else of it", async () => {
    const output = await bundle();
    const modules = output.output.flatMap((o) => (o.type === "chunk" ? o.moduleIds : []));
    expect(modules.length).toBeGreaterThan(20);
    const workspace = modules
      .map((m) => relative(repo, m.replace(/^\0/, "").split("?")[0] ?? m))
      .filter((m) => m.startsWith("packages/") && !m.startsWith("packages/dashboard/"));
    expect(workspace).toEqual(["packages/core/src/vocabulary.ts"]);
    expect(modules.filter((m) => /(^|\0|\/)node:|__vite-browser-external/.test(m))).toEqual([]);
  }, 120_000);

  it("fails on code that imports a Node built-in", async () => {
    const entry = join(scratch, "entry.ts");
    await writeFile(entry, 'import { createHash } from "node:crypto";\nconsole.log(createHash("sha256"));\n');
    await expect(bundle(entry)).rejects.toThrow(/node:crypto is Node-only/);
  }, 120_000);
});
