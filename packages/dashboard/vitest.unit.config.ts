import { defineConfig } from "vitest/config";

// Pure logic of the pages (src/format.ts), and what the build bundles: no browser, no server.
export default defineConfig({
  test: {
    name: "dashboard:unit",
    root: import.meta.dirname,
    include: ["src/**/*.test.ts", "test/**/*.unit.test.ts"],
    sequence: { groupOrder: 0 },
  },
});
