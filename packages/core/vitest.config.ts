import { defineConfig } from "vitest/config";

// Integration tests against the real Docker engine.
export default defineConfig({
  test: {
    name: "core",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // Containers are cheap but the machine has 2 cores: a few files at a time.
    maxWorkers: 3,
    sequence: { groupOrder: 1 },
    globalSetup: ["test/global-setup.ts"],
  },
});
