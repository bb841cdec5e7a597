/**
 * Builds Kiln's documentation site (`pnpm docs:build`):
 *
 *   docs-site/index.html, <guide>.html   every docs/*.md (README.md is the index), one sidebar
 *   docs-site/assets/site.css            the site's only stylesheet (no fonts, no CDN)
 *   docs-site/reference/ts/              TypeDoc over the public packages' entry points
 *   docs-site/reference/http/            the HTTP reference, from the server's OpenAPI document
 *
 * then checks every internal link of the result and fails, naming each, if one points nowhere.
 * The command is cli.ts (`pnpm docs:build`).
 */
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { renderHttpReference } from "@kiln/server";
import { type GuideContext, navOrder, readGuides, renderGuide } from "./guides.ts";
import { escapeHtml, layout, type NavEntry, SITE_CSS } from "./layout.ts";
import { checkLinks } from "./links.ts";
import { openApiDocument } from "./openapi-document.ts";
import { fingerprint, locate, type SiteLocation, STAMP, stampOf } from "./stamp.ts";
import { buildTypeScriptReference } from "./typescript-reference.ts";

export { isUpToDate, REPO_ROOT } from "./stamp.ts";

export interface BuildOptions extends SiteLocation {
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
  const { repoRoot, docsDir, out } = locate(options);
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
