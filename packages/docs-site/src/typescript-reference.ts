/**
 * The TypeScript reference: TypeDoc's HTML theme over the public packages' entry points, read from
 * each package.json's "exports" (so a new subpath export, like @kiln/core/tools, is documented
 * without touching this file), with each module named as users import it.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { Application, Comment, type DeclarationReflection, LogLevel, ReflectionKind } from "typedoc";
import { PUBLIC_PACKAGES } from "./stamp.ts";

export interface EntryPoint {
  /** As users import it: @kiln/core/tools */
  name: string;
  file: string;
  /** The package's description (package.json), for its main entry point. */
  description?: string;
}

export async function entryPoints(repoRoot: string): Promise<EntryPoint[]> {
  const out: EntryPoint[] = [];
  for (const dir of PUBLIC_PACKAGES) {
    const root = join(repoRoot, "packages", dir);
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
      name: string;
      description?: string;
      exports: Record<string, string>;
      publishConfig?: { exports?: Record<string, unknown> };
    };
    for (const [subpath, file] of Object.entries(pkg.exports)) {
      // Only what npm users get: a workspace-only export (a test helper) is not public API.
      if (pkg.publishConfig?.exports && !(subpath in pkg.publishConfig.exports)) continue;
      const main = subpath === ".";
      out.push({
        name: main ? pkg.name : `${pkg.name}/${subpath.replace(/^\.\//, "")}`,
        file: resolve(root, file),
        ...(main && pkg.description ? { description: pkg.description } : {}),
      });
    }
  }
  return out;
}

/** Written into TypeDoc's navigation, then replaced in every page by the path back to the site's root. */
const ROOT = "KILN-DOCS-SITE-ROOT/";

export interface TypeScriptReferenceOptions {
  repoRoot: string;
  /** The folder to write, e.g. docs-site/reference/ts */
  out: string;
  /** The site's root (for the links back to the guides). */
  siteRoot: string;
  repoBlobUrl: string;
  /** Warnings (unresolved {@link}s, ...) go here. */
  log: (line: string) => void;
}

export async function buildTypeScriptReference(o: TypeScriptReferenceOptions): Promise<{ modules: string[] }> {
  const entries = await entryPoints(o.repoRoot);
  const app = await Application.bootstrapWithPlugins({
    name: "Kiln TypeScript API",
    entryPoints: entries.map((e) => e.file),
    entryPointStrategy: "resolve",
    tsconfig: join(o.repoRoot, "packages/docs-site/tsconfig.typedoc.json"),
    basePath: o.repoRoot,
    readme: "none",
    // typecheck already checks the code; TypeDoc only reads it.
    skipErrorChecking: true,
    excludePrivate: true,
    excludeProtected: true,
    excludeInternal: true,
    excludeExternals: true,
    githubPages: false,
    hideGenerator: true,
    disableGit: true,
    sourceLinkTemplate: `${o.repoBlobUrl}{path}#L{line}`,
    navigationLinks: { Guides: `${ROOT}index.html`, "HTTP API": `${ROOT}reference/http/index.html` },
    logLevel: "Warn",
  });
  let errors = 0;
  app.logger.log = (message: string, level: LogLevel) => {
    if (level >= LogLevel.Error) errors++;
    if (level >= LogLevel.Warn) o.log(`typedoc ${level >= LogLevel.Error ? "error" : "warning"}: ${message}`);
  };
  const project = await app.convert();
  if (!project) throw new Error("TypeDoc could not convert the packages' entry points (see the lines above)");

  // Name each module as users import it ("@kiln/core/tools", not "core/src/tools").
  // A module without a comment of its own gets its package's description.
  const byFile = new Map(entries.map((e) => [e.file, e]));
  const modules: string[] = [];
  for (const child of project.children ?? []) {
    if (!child.kindOf(ReflectionKind.Module)) continue;
    const entry = entryOf(child, byFile);
    if (entry === undefined) throw new Error(`TypeDoc module ${child.name}: no entry point matches its file`);
    child.name = entry.name;
    if (!child.comment && entry.description) child.comment = new Comment([{ kind: "text", text: entry.description }]);
    modules.push(entry.name);
  }
  const order = entries.map((e) => e.name);
  modules.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  await app.generateDocs(project, o.out);
  if (errors > 0) throw new Error("TypeDoc reported errors (see the lines above)");
  await rewriteRootLinks(o.out, o.siteRoot);
  return { modules };
}

function entryOf(module: DeclarationReflection, byFile: Map<string, EntryPoint>): EntryPoint | undefined {
  for (const source of module.sources ?? []) {
    const entry = byFile.get(source.fullFileName);
    if (entry !== undefined) return entry;
  }
  return undefined;
}

/** Replaces the placeholder in every page with the relative path from that page to the site's root. */
async function rewriteRootLinks(dir: string, siteRoot: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".html")) continue;
    const file = join(entry.parentPath, entry.name);
    const depth = relative(siteRoot, entry.parentPath).split(sep).filter(Boolean).length;
    const html = await readFile(file, "utf8");
    if (html.includes(ROOT)) await writeFile(file, html.replaceAll(ROOT, "../".repeat(depth)));
  }
}
