/**
 * The link checker: every href and src of every page of the built site that stays inside the
 * site must name a file that exists and, with a #fragment, an element with that id in it. Run
 * over the whole output (guides, both references), so a guide linking to a page or heading that
 * went away fails the build.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

export interface BrokenLink {
  /** The page holding the link, relative to the site's root. */
  page: string;
  href: string;
  reason: string;
}

const ATTRIBUTE = /\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
const ID = /\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;

export async function checkLinks(siteRoot: string): Promise<{ pages: number; links: number; broken: BrokenLink[] }> {
  const root = resolve(siteRoot);
  const files = (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
  const pages = files.filter((f) => f.endsWith(".html"));
  const ids = new Map<string, Promise<Set<string>>>();
  const idsOf = (file: string) => {
    let found = ids.get(file);
    if (!found) {
      found = readFile(file, "utf8").then(
        (html) => new Set([...html.matchAll(ID)].map((m) => decodeEntities(m[1] ?? m[2] ?? ""))),
      );
      ids.set(file, found);
    }
    return found;
  };
  const broken: BrokenLink[] = [];
  let links = 0;
  for (const file of pages) {
    const html = await readFile(file, "utf8");
    const page = relative(root, file).split(sep).join("/");
    for (const m of html.matchAll(ATTRIBUTE)) {
      const href = decodeEntities(m[1] ?? m[2] ?? "");
      if (href === "" || /^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//")) continue; // other sites, data:
      links++;
      const fail = (reason: string) => broken.push({ page, href, reason });
      if (href.startsWith("/")) {
        fail("absolute path: the site must work under any prefix (/docs/, a file:// copy)");
        continue;
      }
      const hashAt = href.indexOf("#");
      const pathPart = (hashAt === -1 ? href : href.slice(0, hashAt)).replace(/\?.*$/, "");
      const fragment = hashAt === -1 ? undefined : href.slice(hashAt + 1);
      let target: string;
      try {
        target = pathPart === "" ? file : resolve(dirname(file), decodeURIComponent(pathPart));
      } catch {
        fail("not valid percent-encoding");
        continue;
      }
      if (target !== root && !target.startsWith(root + sep)) {
        fail("leaves the site");
        continue;
      }
      const info = await stat(target).catch(() => undefined);
      if (info?.isDirectory()) target = join(target, "index.html");
      const exists = info?.isDirectory()
        ? await stat(target).then(
            (s) => s.isFile(),
            () => false,
          )
        : info?.isFile();
      if (!exists) {
        fail(`no file ${relative(root, target)}`);
        continue;
      }
      if (fragment && target.endsWith(".html")) {
        let id: string;
        try {
          id = decodeURIComponent(fragment);
        } catch {
          id = fragment;
        }
        if (!(await idsOf(target)).has(id)) fail(`no element with id "${id}" in ${relative(root, target)}`);
      }
    }
  }
  return { pages: pages.length, links, broken };
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith("#x")) return String.fromCodePoint(Number.parseInt(lower.slice(2), 16));
    if (lower.startsWith("#")) return String.fromCodePoint(Number(lower.slice(1)));
    return ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[lower] as string) ?? "";
  });
}
