import { posix } from "node:path";
import { WORKDIR } from "./defaults.ts";

/**
 * An absolute, normalised sandbox path: relative paths resolve against /workspace and `..`
 * segments are folded (core refuses them unresolved), so "../tmp/x" means /tmp/x.
 */
export function resolvePath(path: string): string {
  return posix.resolve(WORKDIR, path);
}
