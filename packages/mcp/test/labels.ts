import { createHash } from "node:crypto";
import { resolve } from "node:path";

// The value names this checkout: another checkout's run beside this one keeps its sandboxes.
const checkout = createHash("sha256")
  .update(resolve(import.meta.dirname, "../../.."))
  .digest("hex")
  .slice(0, 10);
/** On every sandbox this suite creates: the global setup sweeps what a crashed run left. */
export const TEST_LABELS = { "test-run": `kiln-${checkout}`, "test-package": "mcp" };
