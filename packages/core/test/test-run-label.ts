import { createHash } from "node:crypto";
import { resolve } from "node:path";

/** `kiln-<hash of the repository root>`, from a package's test folder. */
export function testRunLabel(testDir: string): string {
  return `kiln-${createHash("sha256").update(resolve(testDir, "../../..")).digest("hex").slice(0, 10)}`;
}
