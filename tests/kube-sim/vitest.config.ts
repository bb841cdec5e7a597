import { defineConfig } from "vitest/config";

// The test-only Kubernetes API server (src/), driven only through the real @kubernetes/client-node,
// with real Docker containers. Run: pnpm exec vitest run -c tests/kube-sim/vitest.config.ts
export default defineConfig({
  test: {
    name: "kube-sim",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    maxWorkers: 2,
    globalSetup: ["test/global-setup.ts"],
  },
});
