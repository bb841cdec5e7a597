/**
 * Sandbox paths: relative paths resolve against /workspace; `..` segments, NUL bytes and
 * anything that is not a string are refused before a request reaches the sandbox.
 */
import { posix } from "node:path";
import { WORKDIR } from "../defaults.ts";
import { InvalidArgumentError } from "../errors.ts";
import { describe } from "../validate.ts";

export function resolveSandboxPath(field: string, path: unknown): string {
  if (typeof path !== "string") throw new InvalidArgumentError(field, `must be a string path, got ${describe(path)}`);
  if (path.length === 0) throw new InvalidArgumentError(field, "must not be empty");
  if (path.includes("\0")) throw new InvalidArgumentError(field, "must not contain NUL bytes");
  if (path.length > 4096) throw new InvalidArgumentError(field, "is longer than 4096 characters");
  if (path.split("/").includes("..")) throw new InvalidArgumentError(field, `must not contain '..' segments: ${path}`);
  return posix.normalize(posix.isAbsolute(path) ? path : posix.join(WORKDIR, path)).replace(/(.)\/+$/, "$1");
}
