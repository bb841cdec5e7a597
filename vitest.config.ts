import { defineConfig } from "vitest/config";

// One run for every package: `pnpm test` prints a single summary CI can read.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.unit.config.ts", "packages/*/vitest.config.ts", "tests/docs/vitest.config.ts"],
  },
});
