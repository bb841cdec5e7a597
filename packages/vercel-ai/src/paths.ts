/**
 * An absolute, normalised sandbox path: core's tool path resolution (relative paths resolve
 * against /workspace and `..` segments are folded, so "../tmp/x" means /tmp/x).
 */
export { resolveToolPath as resolvePath } from "@kiln/core/tools";
