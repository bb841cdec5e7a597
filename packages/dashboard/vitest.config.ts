import { defineConfig } from "vitest/config";

// Browser tests: headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, against
// a real server (startServer) serving the built dashboard, and the real Docker engine.
export default defineConfig({
  test: {
    name: "dashboard",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.unit.test.ts"], // vitest.unit.config.ts: no browser needed
    testTimeout: 120_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
    sequence: { groupOrder: 3 },
    globalSetup: ["test/global-setup.ts"],
  },
});
