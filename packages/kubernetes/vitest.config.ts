import { defineConfig } from "vitest/config";

// The Kubernetes engine: manifests against the upstream schemas, and the engine end to end
// against tests/kube-sim (a Kubernetes API server backed by this machine's Docker engine).
export default defineConfig({
  test: {
    name: "kubernetes",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
  },
});
