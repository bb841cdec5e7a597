/**
 * The guides: every docs/*.md rendered to HTML with markdown-it (raw HTML in the Markdown is
 * shown escaped, never passed through, and HTML comments are dropped; javascript: and other
 * unsafe URLs are refused by markdown-it),
 * headings given GitHub-style ids, and relative links rewritten: `x.md#a` to `x.html#a`, files
 * beside the guides copied along, other files of the repository linked on GitHub. A link to a
 * file that does not exist is an error, collected and thrown by the build.
 */
import { existsSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import MarkdownIt from "markdown-it";

// highlight.js through require(): its type declarations pull in the DOM library
// (`/// <reference lib="dom" />`), whose fetch and stream types clash with Node's in the
// packages this one typechecks; these few calls are typed here instead.
interface Highlighter {
  registerLanguage(name: string, language: unknown): void;
  registerAliases(aliases: string[], options: { languageName: string }): void;
  getLanguage(name: string): unknown;
  highlight(code: string, options: { language: string; ignoreIllegals: boolean }): { value: string };
}
const require = createRequire(import.meta.url);
const hljs = require("highlight.js/lib/core") as Highlighter;
// The languages the guides' code blocks use (highlighted at build time: no script in the page).
for (const name of ["bash", "dockerfile", "ini", "javascript", "json", "nginx", "python", "typescript", "yaml"]) {
  hljs.registerLanguage(name, require(`highlight.js/lib/languages/${name}`));
}
hljs.registerAliases(["sh", "shell", "console"], { languageName: "bash" });
hljs.registerAliases(["toml"], { languageName: "ini" });

/** A fenced block's code as highlighted HTML (highlight.js escapes it), or "" for markdown-it's own escaping. */
function highlight(code: string, lang: string): string {
  const name = lang.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (!name || !hljs.getLanguage(name)) return "";
  return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
}

export interface Guide {
  /** The source file, e.g. /repo/docs/api.md */
  source: string;
  /** The page in the site, e.g. api.html (README.md is index.html) */
  page: string;
  title: string;
  markdown: string;
}

export interface RenderedGuide extends Guide {
  html: string;
}

export interface GuideContext {
  repoRoot: string;
  docsDir: string;
  /** e.g. https://github.com/kiln-sandbox/kiln/blob/main/ */
  repoBlobUrl: string;
  /** Non-Markdown files of docs/ the guides link to or show, copied into the site (relative to docsDir). */
  assets: Set<string>;
  /** Links that point nowhere: "docs/a.md: link to missing.md" */
  broken: string[];
}

const isMarkdown = (name: string) => extname(name).toLowerCase() === ".md";

export function pageFor(docsDir: string, source: string): string {
  const rel = relative(docsDir, source).split(sep).join("/");
  return /(^|\/)README\.md$/i.test(rel) ? rel.replace(/README\.md$/i, "index.html") : rel.replace(/\.md$/i, ".html");
}

/** Every Markdown file under docs/ (subfolders too, but not hidden ones), with its title. */
export async function readGuides(docsDir: string): Promise<Guide[]> {
  const files = (await readdir(docsDir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && isMarkdown(e.name))
    .map((e) => join(e.parentPath, e.name))
    .filter(
      (f) =>
        !relative(docsDir, f)
          .split(sep)
          .some((part) => part.startsWith(".") || part === "node_modules"),
    )
    .sort();
  return Promise.all(
    files.map(async (source) => {
      const markdown = await readFile(source, "utf8");
      const title = /^#\s+(.+?)\s*#*\s*$/m.exec(markdown)?.[1] ?? basename(source, extname(source));
      return { source, page: pageFor(docsDir, source), title: stripInline(title), markdown };
    }),
  );
}

/** The guides in reading order: docs/README.md's links first (in its order), then the rest by name. */
export function navOrder(guides: Guide[], docsDir: string): Guide[] {
  const index = guides.find((g) => g.page === "index.html");
  const rest = guides.filter((g) => g !== index);
  if (!index) return rest;
  const order: string[] = [];
  for (const m of index.markdown.matchAll(/\]\(\s*<?([^)\s>#]+\.md)(?:#[^)\s>]*)?>?(?:\s+"[^"]*")?\s*\)/gi)) {
    const target = resolve(docsDir, decodeURI(m[1] as string));
    if (!order.includes(target)) order.push(target);
  }
  const rank = (g: Guide) => {
    const i = order.indexOf(g.source);
    return i === -1 ? order.length : i;
  };
  return [...rest].sort((a, b) => rank(a) - rank(b) || a.page.localeCompare(b.page));
}

/** GitHub's heading slugs: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function slugger(): (text: string) => string {
  const seen = new Map<string, number>();
  return (text) => {
    const base = text
      .toLowerCase()
      .trim()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return n === 0 ? base : `${base}-${n}`;
  };
}

function stripInline(text: string): string {
  return text.replace(/`([^`]*)`/g, "$1").replace(/[*_]/g, "");
}

export function renderGuide(guide: Guide, ctx: GuideContext): RenderedGuide {
  // html: true only so raw HTML arrives as its own tokens: comments (the sample runner's
  // `<!-- sample: ... -->` directives) are dropped, anything else is shown escaped, as text.
  const md = new MarkdownIt({ html: true, linkify: false, typographer: false, highlight });
  const rawHtml = (tokens: { content: string }[], i: number) => {
    const content = tokens[i]?.content ?? "";
    return /^\s*<!--[\s\S]*?-->\s*$/.test(content) ? "" : md.utils.escapeHtml(content);
  };
  md.renderer.rules.html_block = rawHtml;
  md.renderer.rules.html_inline = rawHtml;
  const slug = slugger();
  const where = relative(dirname(ctx.docsDir), guide.source);
  md.core.ruler.push("kiln_ids_and_links", (state) => {
    const tokens = state.tokens;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (!token) continue;
      if (token.type === "heading_open") {
        const text = (tokens[i + 1]?.children ?? [])
          .filter((t) => t.type === "text" || t.type === "code_inline")
          .map((t) => t.content)
          .join("");
        token.attrSet("id", slug(text));
      }
      for (const child of token.children ?? []) {
        const attr = child.type === "link_open" ? "href" : child.type === "image" ? "src" : undefined;
        const value = attr && child.attrGet(attr);
        if (attr && value) child.attrSet(attr, rewrite(String(value), child.type === "image", guide, ctx, where));
      }
    }
  });
  return { ...guide, html: md.render(guide.markdown) };
}

/** A link or image target, as the site needs it. */
function rewrite(href: string, image: boolean, guide: Guide, ctx: GuideContext, where: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//") || href.startsWith("#")) return href;
  if (href.startsWith("/")) {
    ctx.broken.push(`${where}: absolute link ${href} (use a path relative to the guide)`);
    return href;
  }
  const [pathPart = "", hash] = splitHash(href);
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathPart);
  } catch {
    ctx.broken.push(`${where}: link ${href} is not valid percent-encoding`);
    return href;
  }
  const target = resolve(dirname(guide.source), decoded);
  const suffix = hash === undefined ? "" : `#${hash}`;
  if (!existsSync(target)) {
    ctx.broken.push(`${where}: link to ${href}, but ${relative(dirname(ctx.docsDir), target)} does not exist`);
    return href;
  }
  const inDocs = target.startsWith(ctx.docsDir + sep);
  const isDir = statSync(target).isDirectory();
  if (inDocs && !isDir && target.toLowerCase().endsWith(".md")) {
    return relativeHref(guide.page, pageFor(ctx.docsDir, target)) + suffix;
  }
  if (inDocs && !isDir) {
    const rel = relative(ctx.docsDir, target).split(sep).join("/");
    ctx.assets.add(rel);
    return relativeHref(guide.page, rel) + suffix;
  }
  const inRepo = target === ctx.repoRoot || target.startsWith(ctx.repoRoot + sep);
  if (!inRepo || image) {
    ctx.broken.push(
      `${where}: ${image ? "image" : "link"} ${href} points outside docs/ and cannot be part of the site`,
    );
    return href;
  }
  const repoPath = relative(ctx.repoRoot, target).split(sep).map(encodeURIComponent).join("/");
  return `${isDir ? ctx.repoBlobUrl.replace("/blob/", "/tree/") : ctx.repoBlobUrl}${repoPath}${suffix}`;
}

function splitHash(href: string): [string, string | undefined] {
  const i = href.indexOf("#");
  return i === -1 ? [href, undefined] : [href.slice(0, i), href.slice(i + 1)];
}

/** The href from one page of the site to another (both relative to the site's root). */
export function relativeHref(from: string, to: string): string {
  const fromDir = from.split("/").slice(0, -1);
  const toParts = to.split("/");
  let common = 0;
  while (common < fromDir.length && common < toParts.length - 1 && fromDir[common] === toParts[common]) common++;
  const up = fromDir.length - common;
  const rel = [...Array<string>(up).fill(".."), ...toParts.slice(common)].join("/");
  return rel
    .split("/")
    .map((p) => (p === ".." ? p : encodeURIComponent(p)))
    .join("/");
}
