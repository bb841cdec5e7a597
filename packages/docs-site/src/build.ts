/**
 * Builds Kiln's documentation site (`pnpm docs:build`):
 *
 *   docs-site/index.html, <guide>.html   every docs/*.md (README.md is the index), one sidebar
 *   docs-site/assets/site.css            the site's only stylesheet (no fonts, no CDN)
 *   docs-site/reference/ts/              TypeDoc over the public packages' entry points
 *   docs-site/reference/http/            the HTTP reference, from the server's OpenAPI document
 *
 * then checks every internal link of the result and fails, naming each, if one points nowhere.
 * `--if-changed` skips the build when nothing it reads changed since the last one (setup.sh).
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { renderHttpReference } from "@kiln/server";
import { type GuideContext, navOrder, readGuides, renderGuide } from "./guides.ts";
import { escapeHtml, layout, type NavEntry, SITE_CSS } from "./layout.ts";
import { checkLinks } from "./links.ts";
import { openApiDocument } from "./openapi-document.ts";
import { buildTypeScriptReference, PUBLIC_PACKAGES } from "./typescript-reference.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
const STAMP = ".build-stamp";

export interface BuildOptions {
  /** @default the repository this file is in */
  repoRoot?: string;
  /** The guides. @default <repoRoot>/docs */
  docsDir?: string;
  /** @default <repoRoot>/docs-site */
  out?: string;
  /** Run TypeDoc (the slow part, ~30 s). @default true */
  typescript?: boolean;
  log?: (line: string) => void;
}

export interface BuildResult {
  out: string;
  guides: string[];
  modules: string[];
  operations: number;
  pages: number;
  links: number;
}

export class BrokenLinksError extends Error {
  readonly broken: string[];
  constructor(broken: string[]) {
    super(`the documentation has ${broken.length} broken link(s):\n  ${broken.join("\n  ")}`);
    this.name = "BrokenLinksError";
    this.broken = broken;
  }
}

export async function buildSite(options: BuildOptions = {}): Promise<BuildResult> {
  const repoRoot = resolve(options.repoRoot ?? REPO_ROOT);
  const docsDir = resolve(options.docsDir ?? join(repoRoot, "docs"));
  const out = resolve(options.out ?? join(repoRoot, "docs-site"));
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rootPkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
    repository?: { url?: string };
  };
  const serverPkg = JSON.parse(await readFile(join(repoRoot, "packages/server/package.json"), "utf8")) as {
    version: string;
  };
  const repoUrl = (rootPkg.repository?.url ?? "https://github.com/kiln-sandbox/kiln")
    .replace(/^git\+/, "")
    .replace(/\.git$/, "");
  const repoBlobUrl = `${repoUrl}/blob/main/`;

  // Built beside the output, swapped in at the end: a failed build leaves the last good site.
  const work = `${out}.building-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, "assets"), { recursive: true });
  try {
    const ctx: GuideContext = { repoRoot, docsDir, repoBlobUrl, assets: new Set(), broken: [] };
    const guides = await readGuides(docsDir);
    const ordered = navOrder(guides, docsDir);
    const nav: NavEntry[] = ordered.map((g) => ({ title: g.title, page: g.page }));
    const references: NavEntry[] = [
      { title: "TypeScript API", page: "reference/ts/index.html" },
      { title: "HTTP API", page: "reference/http/index.html" },
    ];
    if (options.typescript === false) references.shift();
    const page = (p: string, title: string, content: string) =>
      layout({ page: p, title, content, guides: nav, references, version: serverPkg.version });

    for (const guide of guides) {
      const rendered = renderGuide(guide, ctx);
      await mkdir(dirname(join(work, guide.page)), { recursive: true });
      await writeFile(join(work, guide.page), page(guide.page, guide.title, rendered.html));
    }
    if (!guides.some((g) => g.page === "index.html")) {
      const list = nav.map((e) => `<li><a href="${encodeURI(e.page)}">${escapeHtml(e.title)}</a></li>`).join("");
      await writeFile(
        join(work, "index.html"),
        page("index.html", "Kiln documentation", `<h1>Kiln documentation</h1><h2>Guides</h2><ul>${list}</ul>`),
      );
    }
    for (const asset of ctx.assets) {
      await mkdir(dirname(join(work, asset)), { recursive: true });
      await copyFile(join(docsDir, asset), join(work, asset));
    }
    await writeFile(join(work, "assets/site.css"), SITE_CSS);

    const document = await openApiDocument();
    await mkdir(join(work, "reference/http"), { recursive: true });
    await writeFile(join(work, "reference/http/openapi.json"), `${JSON.stringify(document, null, 2)}\n`);
    await writeFile(
      join(work, "reference/http/index.html"),
      renderHttpReference(document, { homeHref: "../../index.html", specHref: "openapi.json" }),
    );
    const operations = Object.values(document.paths ?? {}).reduce((n, item) => n + Object.keys(item).length, 0);

    let modules: string[] = [];
    if (options.typescript !== false) {
      ({ modules } = await buildTypeScriptReference({
        repoRoot,
        out: join(work, "reference/ts"),
        siteRoot: work,
        repoBlobUrl,
        log,
      }));
    }

    // Links the guides got wrong are named by their Markdown source; the rest by the page holding them.
    if (ctx.broken.length > 0) throw new BrokenLinksError(ctx.broken);
    const checked = await checkLinks(work);
    if (checked.broken.length > 0) {
      throw new BrokenLinksError(checked.broken.map((b) => `${b.page}: ${b.href}: ${b.reason}`));
    }

    await writeFile(join(work, STAMP), stampOf(await fingerprint(repoRoot, docsDir), options));
    await rm(out, { recursive: true, force: true });
    await rename(work, out);
    return {
      out,
      guides: guides.map((g) => g.page),
      modules,
      operations,
      pages: checked.pages,
      links: checked.links,
    };
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
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

export async function isUpToDate(options: BuildOptions = {}): Promise<boolean> {
  const repoRoot = resolve(options.repoRoot ?? REPO_ROOT);
  const docsDir = resolve(options.docsDir ?? join(repoRoot, "docs"));
  const out = resolve(options.out ?? join(repoRoot, "docs-site"));
  const stamp = await readFile(join(out, STAMP), "utf8").catch(() => "");
  return stamp !== "" && stamp === stampOf(await fingerprint(repoRoot, docsDir), options);
}

const stampOf = (hash: string, options: BuildOptions) =>
  `${hash}${options.typescript === false ? " no-typescript" : ""}`;

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      docs: { type: "string" },
      "if-changed": { type: "boolean", default: false },
      "no-typescript": { type: "boolean", default: false },
    },
  });
  const options: BuildOptions = {
    ...(values.out === undefined ? {} : { out: values.out }),
    ...(values.docs === undefined ? {} : { docsDir: values.docs }),
    typescript: !values["no-typescript"],
  };
  const started = performance.now();
  if (values["if-changed"] && (await isUpToDate(options))) {
    console.log("docs site is up to date");
  } else {
    try {
      const r = await buildSite(options);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `docs site built in ${seconds} s: ${r.out} (${r.guides.length} guides, ${r.modules.length} TypeScript modules, ` +
          `${r.operations} HTTP operations, ${r.pages} pages, ${r.links} internal links checked)`,
      );
    } catch (err) {
      console.error(`docs:build failed: ${err instanceof BrokenLinksError ? err.message : (err as Error).stack}`);
      process.exitCode = 1;
    }
  }
}
