import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Core's engine contract against the Kubernetes engine: a selection of packages/core's
// integration tests (lifecycle, code, files, exec, pool, persistence), unchanged but for skips of
// Docker-only behaviour, with every Kiln built on kubernetes() pointed at kube-sim.
// scripts/test.sh runs it: pnpm exec vitest run -c packages/kubernetes/vitest.contract.config.ts
export default defineConfig({
  test: {
    name: "kubernetes-contract",
    root: fileURLToPath(new URL("../core", import.meta.url)),
    include: ["test/{lifecycle,code,files,exec,pool,persistence}.test.ts"],
    env: {
      KILN_TEST_ENGINE: "kube-sim",
      KILN_TEST_ENGINE_MODULE: fileURLToPath(new URL("./test/contract/engine.ts", import.meta.url)),
    },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    maxWorkers: 2,
    globalSetup: [fileURLToPath(new URL("./test/contract/global-setup.ts", import.meta.url))],
  },
});
