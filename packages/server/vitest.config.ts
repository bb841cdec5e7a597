import { defineConfig } from "vitest/config";

// Integration tests: the server over real HTTP on loopback, against the real Docker engine.
export default defineConfig({
  test: {
    name: "server",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // 2 cores, shared with other suites: a few files at a time.
    maxWorkers: 3,
    sequence: { groupOrder: 1 },
    globalSetup: ["test/global-setup.ts"],
  },
});
