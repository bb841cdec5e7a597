import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// Remote mode: a real Kiln server started in-process (global-setup.ts) per project, and
// - "remote": the remote client's own tests (new Kiln({ url })) against it;
// - each adapter's integration suite with testKiln() returning a remote Kiln (KILN_TEST_REMOTE=1).
// Run: pnpm exec vitest run -c tests/remote/vitest.config.ts (scripts/test.sh does).
const serverSetup = resolve(import.meta.dirname, "global-setup.ts");
const adapter = (name: string) => ({
  extends: resolve(import.meta.dirname, `../../packages/${name}/vitest.config.ts`),
  test: { name: `${name}:remote`, globalSetup: [serverSetup], env: { KILN_TEST_REMOTE: "1" } },
});

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "remote",
          root: import.meta.dirname,
          include: ["*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          globalSetup: [serverSetup],
        },
      },
      adapter("langchain"),
      adapter("vercel-ai"),
      adapter("mastra"),
    ],
  },
});
