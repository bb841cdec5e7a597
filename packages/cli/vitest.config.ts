import { defineConfig } from "vitest/config";

// Integration tests: the kiln binary as a child process, against the real Docker engine (local
// mode) and a real `kiln serve` (remote mode).
export default defineConfig({
  test: {
    name: "cli",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // The machine has 2 cores and the adapters' suites share this group.
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
    globalSetup: ["test/global-setup.ts"],
  },
});
