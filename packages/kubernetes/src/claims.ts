/** PVC names (no imports of the engine: manifests.ts uses it). */
import { createHash } from "node:crypto";

/** The PVC behind an engine volume name (core's `kiln-vol-<name>`): a valid, stable, injective name. */
export function claimName(volume: string): string {
  const slug = volume
    .toLowerCase()
    .replace(/^kiln-vol-/, "")
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  const hash = createHash("sha256").update(volume).digest("hex").slice(0, 12);
  return `kiln-vol-${slug ? `${slug}-` : ""}${hash}`;
}
