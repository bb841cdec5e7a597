// Finds the code samples of a Markdown file: every fenced block, with the `<!-- sample: ... -->`
// directives written just before it. Pure (no I/O), so its tests need no engine.
//
// Conventions (docs/README.md, "Samples that run"):
// - ```ts / ```js run as ES modules with Node (type stripping) inside the workspace;
//   ```python with /usr/bin/python3 and the kiln-sdk; ```bash / ```sh in a shell with `kiln` on PATH
//   against the runner's Kiln server.
// - ```text, ```json, ```console, ... are not code and never run. A fence without a language is an
//   error: say what it is.
// - Directives, in one or more HTML comments right before the block (blank lines allowed):
//   `skip (reason)` (the reason is required), `server` (a TS/JS sample gets KILN_URL/KILN_API_KEY),
//   `local` (a shell sample runs without them, on this machine's engine),
//   `admin` (the server's admin key instead of a fresh organisation's), `expect "text"` (stdout
//   must contain it; `\n` is a newline, `\"` a quote; repeatable), `timeout 300` (seconds), `leaves sandboxes (reason)` (sandboxes
//   left behind are removed without failing the sample), `prelude scripts/packed/x.prelude.ts` (that
//   file's code runs first: what an excerpt leaves to the reader, such as a scripted model; modules
//   it imports from beside it, `./x.ts`, are copied beside the sample).

export type SampleKind = "ts" | "js" | "python" | "shell";

export interface Directives {
  skip?: string;
  server: boolean;
  /** A shell sample on this machine's engine (no KILN_URL), as a reader without a server runs it. */
  local: boolean;
  admin: boolean;
  expect: string[];
  timeoutSec?: number;
  leaves?: string;
  /** A file (from the repository root) whose code runs before the sample's: what an excerpt leaves to the reader. */
  prelude?: string;
}

export interface Sample {
  /** The Markdown file, as given to `extractSamples`. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  kind: SampleKind;
  code: string;
  directives: Directives;
}

export interface Extracted {
  samples: Sample[];
  /** Blocks in a language that is not run (text, json, ...): not samples. */
  notCode: number;
  /** Mistakes in the file itself (a fence without a language, a skip without a reason, ...). */
  problems: { file: string; line: number; message: string }[];
}

const KINDS: Record<string, SampleKind> = {
  ts: "ts",
  typescript: "ts",
  js: "js",
  javascript: "js",
  mjs: "js",
  python: "python",
  py: "python",
  bash: "shell",
  sh: "shell",
  shell: "shell",
};

/** Languages that are never code to run: output, configuration, data, diagrams. */
export const NOT_CODE = new Set([
  "text",
  "txt",
  "console",
  "json",
  "jsonc",
  "json5",
  "yaml",
  "yml",
  "toml",
  "ini",
  "http",
  "diff",
  "dockerfile",
  "html",
  "xml",
  "csv",
  "sql",
  "mermaid",
  "nginx",
  "caddyfile",
]);

const DIRECTIVE = /<!--\s*sample:\s*([\s\S]*?)-->/g;

/** Each directive: its pattern, and what a match sets (returns a problem, if any). */
const DIRECTIVES: [RegExp, (m: RegExpExecArray, into: Directives) => string | undefined][] = [
  [
    /^skip\b\s*(?:\(([^)]*)\))?/,
    (m, into) => {
      into.skip = m[1]?.trim() || "(no reason given)";
      return m[1]?.trim() ? undefined : "`skip` needs a reason: <!-- sample: skip (why) -->";
    },
  ],
  [
    /^leaves sandboxes\b\s*(?:\(([^)]*)\))?/,
    (m, into) => {
      into.leaves = m[1]?.trim() || "(no reason given)";
      return m[1]?.trim() ? undefined : "`leaves sandboxes` needs a reason";
    },
  ],
  [
    /^server\b/,
    (_, into) => {
      into.server = true;
      return undefined;
    },
  ],
  [
    /^local\b/,
    (_, into) => {
      into.local = true;
      return undefined;
    },
  ],
  [
    /^admin\b/,
    (_, into) => {
      into.admin = true;
      into.server = true;
      return undefined;
    },
  ],
  [
    /^expect\s+"((?:[^"\\]|\\.)*)"/,
    (m, into) => {
      into.expect.push(m[1]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c)));
      return undefined;
    },
  ],
  [
    /^prelude\s+([^\s,]+)/,
    (m, into) => {
      into.prelude = m[1]!;
      return undefined;
    },
  ],
  [
    /^timeout\s+(\d+)/,
    (m, into) => {
      into.timeoutSec = Number(m[1]);
      return undefined;
    },
  ],
];

/** Parses the text of one `<!-- sample: ... -->` comment into `into`; returns problems. */
export function parseDirective(text: string, into: Directives): string[] {
  const problems: string[] = [];
  let rest = text.trim();
  while (rest.length > 0) {
    const found = DIRECTIVES.map(([re, apply]) => [re.exec(rest), apply] as const).find(([m]) => m !== null);
    if (!found) {
      problems.push(`unknown sample directive: ${rest}`);
      break;
    }
    const [m, apply] = found;
    const problem = apply(m!, into);
    if (problem) problems.push(problem);
    rest = rest.slice(m![0].length).replace(/^[\s,;]+/, "");
  }
  return problems;
}

export function extractSamples(file: string, markdown: string): Extracted {
  const lines = markdown.split("\n");
  const out: Extracted = { samples: [], notCode: 0, problems: [] };
  // Directive comments seen since the last block (reset by any other non-blank line).
  let pending: { text: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(line);
    if (fence) {
      const [, indent, marks, langRaw] = fence;
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length; j++) {
        const close = lines[j]!;
        if (
          close.trim().startsWith(marks!) &&
          close
            .trim()
            .replace(new RegExp(`^\\${marks![0]}+`), "")
            .trim() === ""
        )
          break;
        body.push(indent && close.startsWith(indent!) ? close.slice(indent!.length) : close);
      }
      const lang = langRaw!.toLowerCase();
      const directives: Directives = { server: false, local: false, admin: false, expect: [] };
      for (const d of pending) {
        for (const problem of parseDirective(d.text, directives))
          out.problems.push({ file, line: d.line, message: problem });
      }
      pending = [];
      const kind = KINDS[lang];
      if (lang === "") {
        out.problems.push({
          file,
          line: i + 1,
          message: "a fenced block without a language: name it (```ts, ```bash, or ```text for output and diagrams)",
        });
      } else if (kind) {
        out.samples.push({ file, line: i + 1, lang, kind, code: `${body.join("\n")}\n`, directives });
      } else if (NOT_CODE.has(lang)) {
        out.notCode++;
        if (directives.skip || directives.expect.length > 0 || directives.server)
          out.problems.push({
            file,
            line: i + 1,
            message: `a sample directive on a \`${lang}\` block, which never runs`,
          });
      } else {
        out.problems.push({
          file,
          line: i + 1,
          message: `unknown block language "${lang}": use one the runner knows (${Object.keys(KINDS).join(", ")}) or a non-code one (${[...NOT_CODE].join(", ")})`,
        });
      }
      i = j;
      continue;
    }
    // A directive is a line of its own; one quoted inside a paragraph (as in docs/README.md) is prose.
    const comments = /^\s*<!--\s*sample:/.test(line) ? [...line.matchAll(DIRECTIVE)] : [];
    if (comments.length > 0) {
      for (const c of comments) pending.push({ text: c[1]!, line: i + 1 });
    } else if (line.trim() !== "") {
      if (pending.length > 0) {
        for (const d of pending)
          out.problems.push({ file, line: d.line, message: "a sample directive not followed by a code block" });
      }
      pending = [];
    }
  }
  return out;
}
