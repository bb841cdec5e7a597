/** Whether docs-site/ is up to date: a hash of everything the build reads, kept beside its output. */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
export const STAMP = ".build-stamp";
/** The packages users import, in the order the reference lists them. */
export const PUBLIC_PACKAGES = ["core", "server", "langchain", "vercel-ai", "mastra", "mcp", "kubernetes"];

export interface SiteLocation {
  /** @default the repository this file is in */
  repoRoot?: string;
  /** The guides. @default <repoRoot>/docs */
  docsDir?: string;
  /** @default <repoRoot>/docs-site */
  out?: string;
  /** Run TypeDoc (the slow part, ~30 s). @default true */
  typescript?: boolean;
}

export function locate(o: SiteLocation): { repoRoot: string; docsDir: string; out: string } {
  const repoRoot = resolve(o.repoRoot ?? REPO_ROOT);
  return {
    repoRoot,
    docsDir: resolve(o.docsDir ?? join(repoRoot, "docs")),
    out: resolve(o.out ?? join(repoRoot, "docs-site")),
  };
}

/** A hash of everything the build reads: the guides, the packages' sources and manifests, this builder. */
export async function fingerprint(repoRoot: string, docsDir: string): Promise<string> {
  const hash = createHash("sha256");
  const dirs = [
    docsDir,
    join(repoRoot, "packages/docs-site/src"),
    ...PUBLIC_PACKAGES.map((p) => join(repoRoot, "packages", p)),
  ];
  for (const dir of dirs) {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    const files = entries
      .filter((e) => e.isFile() && !`${e.parentPath}${sep}`.includes(`${sep}node_modules${sep}`))
      .filter((e) => /\.(ts|md|json|png|svg)$/.test(e.name) && !e.name.endsWith(".test.ts"))
      .map((e) => join(e.parentPath, e.name))
      .filter((f) => !f.includes(`${sep}test${sep}`) && !f.includes(`${sep}dist${sep}`))
      .sort();
    for (const file of files)
      hash
        .update(relative(repoRoot, file))
        .update("\0")
        .update(await readFile(file))
        .update("\0");
  }
  return hash.digest("hex");
}

export async function isUpToDate(options: SiteLocation = {}): Promise<boolean> {
  const { repoRoot, docsDir, out } = locate(options);
  const stamp = await readFile(join(out, STAMP), "utf8").catch(() => "");
  return stamp !== "" && stamp === stampOf(await fingerprint(repoRoot, docsDir), options);
}

export const stampOf = (hash: string, options: SiteLocation) =>
  `${hash}${options.typescript === false ? " no-typescript" : ""}`;
