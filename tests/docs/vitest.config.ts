import { defineConfig } from "vitest/config";

// The sample runner's own tests: the extractor, and the runner on fixtures that break on purpose
// (real engine, real server). The docs' samples themselves run with `node tests/docs/run.ts`.
export default defineConfig({
  test: {
    name: "docs",
    root: import.meta.dirname,
    include: ["*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
