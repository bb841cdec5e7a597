// The build over small guides of its own: links rewritten, the nav in docs/README.md's order,
// Markdown's raw HTML and unsafe URLs escaped, and a broken link between guides failing the
// build loudly (the function throws naming it; the command exits 1 naming it).
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokenLinksError, buildSite, isUpToDate, REPO_ROOT } from "../src/build.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-docs-guides-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A docs folder with these files. */
async function docs(name: string, files: Record<string, string>): Promise<string> {
  const at = join(dir, name);
  await mkdir(at, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await mkdir(dirname(join(at, file)), { recursive: true });
    await writeFile(join(at, file), text);
  }
  return at;
}

const build = (docsDir: string, out: string) =>
  buildSite({ docsDir, out: join(dir, out), typescript: false, log: () => {} });

describe("guides", () => {
  it("rewrites links between guides to pages, keeps anchors, and orders the nav as docs/README.md does", async () => {
    const architecture = relative(join(dir, "good"), join(REPO_ROOT, "ARCHITECTURE.md"));
    const docsDir = await docs("good", {
      "README.md": "# Start here\n\n1. [Zebra](zebra.md)\n2. [Alpha](alpha.md#second-part)\n",
      "alpha.md":
        "# Alpha guide\n\n## First part\n\n## Second part\n\nSee [the index](README.md) and [zebra](./zebra.md#top-a) and [deep](sub/deep.md).\n",
      "sub/deep.md": "# Deep\n\nBack [up](../alpha.md#first-part), a [picture](../chart.png).\n",
      "zebra.md": `# Zebra\n\n## Top: a\n\n![chart](chart.png)\n\n[the architecture](${architecture})\n`,
      "chart.png": "not really a png",
      "extra.md": "# Extra\n",
    });
    const result = await build(docsDir, "good-site");
    expect(result.guides.sort()).toEqual(["alpha.html", "extra.html", "index.html", "sub/deep.html", "zebra.html"]);
    const alpha = await readFile(join(result.out, "alpha.html"), "utf8");
    expect(alpha).toContain('<h2 id="second-part">Second part</h2>');
    expect(alpha).toContain('href="index.html"');
    expect(alpha).toContain('href="zebra.html#top-a"');
    // The nav: README's order (zebra, alpha), then the rest by name.
    const nav = [...alpha.matchAll(/<li(?: class="current")?><a href="([a-z]+)\.html">/g)].map((m) => m[1]);
    expect(nav).toEqual(["zebra", "alpha", "extra"]);
    const deep = await readFile(join(result.out, "sub/deep.html"), "utf8");
    expect(deep).toContain('href="../alpha.html#first-part"');
    expect(deep).toContain('href="../assets/site.css"');
    expect(deep).toContain('href="../zebra.html"');
    const zebra = await readFile(join(result.out, "zebra.html"), "utf8");
    expect(zebra).toContain('src="chart.png"');
    expect(await readFile(join(result.out, "chart.png"), "utf8")).toBe("not really a png");
    expect(zebra).toMatch(/href="https:\/\/github\.com\/[^"]+\/blob\/main\/[^"]*ARCHITECTURE\.md"/);
  });

  it("escapes raw HTML and refuses javascript: links", async () => {
    const docsDir = await docs("hostile", {
      "a.md":
        '# A <b>bold</b> & "quoted"\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1))\n\n<img src=x onerror=alert(1)>\n\n' +
        "<!-- sample: skip -->\n\nInline <i onclick=x>i</i> and <!-- inline comment --> text.\n\n" +
        '```ts\nconst tag = "</code><script>x</script>";\n```\n\n```unknown-lang\n<b>plain</b>\n```\n',
    });
    const result = await build(docsDir, "hostile-site");
    const html = await readFile(join(result.out, "a.html"), "utf8");
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain("<img src=x");
    expect(html).not.toContain('href="javascript:');
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("Inline &lt;i onclick=x&gt;i&lt;/i&gt; and  text.");
    expect(html).not.toContain("sample: skip");
    expect(html).not.toContain("<i onclick");
    // Code blocks: highlighted at build time, their text escaped, with or without a known language.
    expect(html).toContain('<span class="hljs-keyword">const</span>');
    expect(html).toContain("&lt;/code&gt;&lt;script&gt;x&lt;/script&gt;");
    expect(html).toContain("&lt;b&gt;plain&lt;/b&gt;");
    expect(html).not.toContain("<script>");
    expect(html).toContain("<title>A &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; · Kiln</title>");
  });
});

describe("a broken link", () => {
  it("to a guide that does not exist fails the build, naming the guide and the link", async () => {
    const docsDir = await docs("broken-file", { "a.md": "# A\n\nSee [b](b.md).\n" });
    const err = await build(docsDir, "broken-file-site").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenLinksError);
    expect((err as BrokenLinksError).broken).toEqual([
      "broken-file/a.md: link to b.md, but broken-file/b.md does not exist",
    ]);
  });

  it("to a heading that does not exist fails the build", async () => {
    const docsDir = await docs("broken-anchor", {
      "a.md": "# A\n\n[b](b.md#nowhere)\n",
      "b.md": "# B\n\n## Somewhere\n",
    });
    const err = await build(docsDir, "broken-anchor-site").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokenLinksError);
    expect((err as BrokenLinksError).broken).toEqual([
      expect.stringContaining('a.html: b.html#nowhere: no element with id "nowhere" in b.html'),
    ]);
  });

  it("makes `pnpm docs:build` exit 1 and print it, and leaves the last good site in place", async () => {
    const docsDir = await docs("cli", { "a.md": "# A\n\n[ok](b.md)\n", "b.md": "# B\n" });
    const out = join(dir, "cli-site");
    const cmd = (args: string[]) =>
      spawnSync(process.execPath, [join(import.meta.dirname, "../src/cli.ts"), ...args], { encoding: "utf8" });
    const ok = cmd(["--docs", docsDir, "--out", out, "--no-typescript"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("docs site built");
    expect(await isUpToDate({ docsDir, out, typescript: false })).toBe(true);
    expect(cmd(["--docs", docsDir, "--out", out, "--no-typescript", "--if-changed"]).stdout).toContain("up to date");

    await writeFile(join(docsDir, "a.md"), "# A\n\n[gone](c.md)\n");
    expect(await isUpToDate({ docsDir, out, typescript: false })).toBe(false);
    const bad = cmd(["--docs", docsDir, "--out", out, "--no-typescript", "--if-changed"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("broken link");
    expect(bad.stderr).toContain("c.md");
    // The previous build is still served.
    expect(await readFile(join(out, "a.html"), "utf8")).toContain('href="b.html"');
  });
});
