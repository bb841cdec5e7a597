import { defineConfig } from "vitest/config";

// The AI SDK's own loop (generateText, ToolLoopAgent) driven by its mock model, against real
// sandboxes; plus the unit tests in src/ (the AI SDK wrapping of outputs, line ranges).
export default defineConfig({
  // Paths below are this package's, also when run with -c from the repository root.
  root: import.meta.dirname,
  test: {
    name: "vercel-ai",
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // The machine has 2 cores and other adapters' suites run beside this one.
    maxWorkers: 2,
    sequence: { groupOrder: 2 },
    globalSetup: ["test/global-setup.ts"],
  },
});
