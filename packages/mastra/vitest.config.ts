import { defineConfig } from "vitest/config";

// Integration tests: Mastra's real agent loop and workspace against real Docker sandboxes.
export default defineConfig({
  // Resolve `include` from this folder, also when run as `vitest -c packages/mastra/vitest.config.ts`.
  root: import.meta.dirname,
  test: {
    name: "mastra",
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // The machine has 2 cores and other packages' suites run beside this one.
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
    globalSetup: ["test/global-setup.ts"],
  },
});
