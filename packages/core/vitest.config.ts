import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "core",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Integration tests start real containers: give them time, and not too many at once on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    maxConcurrency: 4,
    fileParallelism: true,
    poolOptions: { forks: { maxForks: 3 } },
    globalSetup: ["test/global-setup.ts"],
  },
});
