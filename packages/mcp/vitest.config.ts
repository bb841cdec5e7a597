import { defineConfig } from "vitest/config";

// Sessions over the SDK's in-memory transport against the real Docker engine (the stdio and HTTP
// transports are tested from packages/cli and packages/server).
export default defineConfig({
  root: import.meta.dirname,
  test: {
    name: "mcp",
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
    globalSetup: ["test/global-setup.ts"],
  },
});
