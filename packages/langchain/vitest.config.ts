import { defineConfig } from "vitest/config";

// Integration tests: LangChain's real agent loop and deepagents against real Kiln sandboxes.
export default defineConfig({
  test: {
    name: "langchain",
    // Also when run alone from the repo root: vitest run -c packages/langchain/vitest.config.ts
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // The machine has 2 cores and other adapters' suites run beside this one.
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
    globalSetup: ["test/global-setup.ts"],
  },
});
