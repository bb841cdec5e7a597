/** On every sandbox this suite creates: the global setup sweeps what a crashed run left. */
import { createHash } from "node:crypto";
import { resolve } from "node:path";

// The value names this checkout: another checkout's run beside this one keeps its sandboxes.
const checkout = createHash("sha256")
  .update(resolve(import.meta.dirname, "../../.."))
  .digest("hex")
  .slice(0, 10);
export const TEST_LABELS = { "test-run": `kiln-${checkout}`, "test-suite": "cli" } as const;
/** The same labels as `--label k=v` flags. */
export const LABEL_FLAGS = Object.entries(TEST_LABELS).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
