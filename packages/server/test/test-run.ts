import { createHash } from "node:crypto";
import { resolve } from "node:path";

/** `kiln-<hash of the repository root>`: the label value every test sandbox of this checkout carries (as core's tests do). */
export const TEST_RUN = `kiln-${createHash("sha256")
  .update(resolve(import.meta.dirname, "../../.."))
  .digest("hex")
  .slice(0, 10)}`;
