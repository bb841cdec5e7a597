import { defineConfig } from "vitest/config";

// Pure logic, no engine, no network.
export default defineConfig({
  test: { name: "server:unit", root: import.meta.dirname, include: ["src/**/*.test.ts"], sequence: { groupOrder: 0 } },
});
