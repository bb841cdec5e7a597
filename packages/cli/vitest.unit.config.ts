import { defineConfig } from "vitest/config";

// Pure logic, no engine: runs anywhere in milliseconds.
export default defineConfig({
  test: { name: "cli:unit", root: import.meta.dirname, include: ["src/**/*.test.ts"], sequence: { groupOrder: 0 } },
});
