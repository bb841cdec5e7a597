import { defineConfig } from "vitest/config";

// The site built from this checkout's docs/ and packages, served by a real server on loopback.
// No sandboxes: the server's Kiln is never asked to reach the engine.
export default defineConfig({
  test: {
    name: "docs-site",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    // One full build (TypeDoc included) takes 10-40 s on a busy 2-core machine.
    hookTimeout: 300_000,
    // Runs beside core and server (group 1), whose maxWorkers vitest requires it to share.
    maxWorkers: 3,
    sequence: { groupOrder: 1 },
  },
});
