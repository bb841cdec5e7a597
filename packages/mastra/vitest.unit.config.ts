import { defineConfig } from "vitest/config";

// Pure logic, no engine: output formatting, shell quoting and tool options.
export default defineConfig({
  root: import.meta.dirname,
  test: { name: "mastra:unit", include: ["src/**/*.test.ts"], sequence: { groupOrder: 0 } },
});
