/** The page around every guide: a sidebar (guides in reading order, the references), the content. */
import { relativeHref } from "./guides.ts";

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
  );
}

export interface NavEntry {
  title: string;
  page: string;
}

export interface PageInput {
  /** This page's path in the site, e.g. api.html */
  page: string;
  title: string;
  /** Already-rendered, already-escaped HTML. */
  content: string;
  guides: NavEntry[];
  references: NavEntry[];
  version: string;
}

export function layout(p: PageInput): string {
  const link = (e: NavEntry) =>
    `<li${e.page === p.page ? ' class="current"' : ""}><a href="${escapeHtml(relativeHref(p.page, e.page))}">${escapeHtml(e.title)}</a></li>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)} · Kiln</title>
<link rel="stylesheet" href="${escapeHtml(relativeHref(p.page, "assets/site.css"))}">
</head>
<body>
<nav class="sidebar">
<p class="brand"><a href="${escapeHtml(relativeHref(p.page, "index.html"))}">Kiln</a> <span class="version">${escapeHtml(p.version)}</span></p>
<p class="group">Guides</p>
<ul>${p.guides.map(link).join("")}</ul>
<p class="group">Reference</p>
<ul>${p.references.map(link).join("")}</ul>
</nav>
<main>
${p.content}
</main>
</body>
</html>
`;
}

export const SITE_CSS = `:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fff; --muted: #5c5c66; --line: #e2e2e8; --code: #f4f4f7; --link: #b3470d; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6ea; --bg: #16161a; --muted: #a0a0ab; --line: #30303a; --code: #22222a; --link: #ff9a5c; } }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; display: flex; }
a { color: var(--link); }
.sidebar { position: sticky; top: 0; height: 100vh; overflow-y: auto; width: 16rem; flex: none; padding: 1rem 1.2rem; border-right: 1px solid var(--line); font-size: 0.92em; }
.sidebar ul { list-style: none; padding: 0; margin: 0 0 1em; }
.sidebar li { margin: 0.15em 0; }
.sidebar a { text-decoration: none; }
.sidebar li.current a { font-weight: 700; color: var(--fg); }
.brand { font-size: 1.3em; font-weight: 700; margin: 0 0 1em; }
.brand a { color: var(--fg); }
.version, .group { color: var(--muted); font-size: 0.75rem; font-weight: 400; }
.group { text-transform: uppercase; letter-spacing: 0.05em; margin: 1em 0 0.3em; }
main { padding: 1.5rem 2.5rem 4rem; max-width: 60rem; min-width: 0; }
h1, h2, h3 { line-height: 1.25; }
h2 { margin-top: 2em; padding-bottom: 0.2em; border-bottom: 1px solid var(--line); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.88em; }
:not(pre) > code { background: var(--code); padding: 0.1em 0.3em; border-radius: 4px; }
pre { background: var(--code); padding: 0.9em 1em; overflow-x: auto; border-radius: 6px; line-height: 1.45; }
table { border-collapse: collapse; display: block; overflow-x: auto; margin: 1em 0; }
th, td { border: 1px solid var(--line); padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: var(--code); }
blockquote { margin: 1em 0; padding: 0 1em; color: var(--muted); border-left: 3px solid var(--line); }
img { max-width: 100%; }
.hljs-keyword, .hljs-built_in, .hljs-meta .hljs-keyword { color: #8e3ba8; }
.hljs-string, .hljs-regexp, .hljs-attr + .hljs-string { color: #1f7a3a; }
.hljs-comment, .hljs-quote { color: #6e6e78; font-style: italic; }
.hljs-number, .hljs-literal, .hljs-variable.constant_ { color: #b35900; }
.hljs-title, .hljs-title.function_, .hljs-title.class_ { color: #1f5fa8; }
.hljs-attr, .hljs-property, .hljs-variable, .hljs-params { color: #9a3412; }
@media (prefers-color-scheme: dark) {
  .hljs-keyword, .hljs-built_in, .hljs-meta .hljs-keyword { color: #d19ee6; }
  .hljs-string, .hljs-regexp { color: #8fd19e; }
  .hljs-comment, .hljs-quote { color: #8d8d99; }
  .hljs-number, .hljs-literal { color: #f0a868; }
  .hljs-title, .hljs-title.function_, .hljs-title.class_ { color: #8cb8f0; }
  .hljs-attr, .hljs-property, .hljs-variable, .hljs-params { color: #f0b08c; }
}
@media (max-width: 800px) { body { display: block; } .sidebar { position: static; height: auto; width: auto; border-right: 0; border-bottom: 1px solid var(--line); } main { padding: 1rem; } }
`;
