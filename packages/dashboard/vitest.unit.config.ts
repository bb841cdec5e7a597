import { defineConfig } from "vitest/config";

// Pure logic of the pages (src/format.ts): no browser, no server.
export default defineConfig({
  test: {
    name: "dashboard:unit",
    root: import.meta.dirname,
    include: ["src/**/*.test.ts"],
    sequence: { groupOrder: 0 },
  },
});
