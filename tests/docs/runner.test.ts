import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { extractSamples, parseDirective } from "./extract.ts";
import { discoverFiles } from "./run.ts";
import { REPO } from "./runner.ts";

const run = promisify(execFile);
const fixture = (name: string) => join(import.meta.dirname, "fixtures", name);

async function runner(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(import.meta.dirname, "run.ts"), ...args], {
      cwd: REPO,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe("extractSamples", () => {
  it("finds blocks with their line, language, kind and directives", async () => {
    const { samples, notCode, problems } = extractSamples(
      "fixtures/samples.md",
      await readFile(fixture("samples.md"), "utf8"),
    );
    expect(problems).toEqual([]);
    expect(notCode).toBe(1);
    expect(samples.map((s) => [s.line, s.kind])).toEqual([
      [6, "ts"],
      [18, "shell"],
      [27, "python"],
      [35, "shell"],
      [41, "ts"],
      [48, "js"],
      [54, "ts"],
      [63, "shell"],
    ]);
    expect(samples[7]!.directives.local).toBe(true);
    expect(samples[0]!.directives.expect).toEqual(["42"]);
    expect(samples[3]!.directives.skip).toBe("shows a command that must not run here");
    expect(samples[0]!.code).toMatch(/^import \{ Kiln \}[\s\S]*console\.log\(run\.results\[0\]\?\.text\);\n$/);
  });

  it("refuses a skip without a reason, a fence without a language and unknown directives", async () => {
    const { problems } = extractSamples("fixtures/markup.md", await readFile(fixture("markup.md"), "utf8"));
    expect(problems.map((p) => [p.line, p.message.split(":")[0]])).toEqual([
      [3, "`skip` needs a reason"],
      [8, "a fenced block without a language"],
      [12, "unknown sample directive"],
    ]);
  });

  it("parses combined directives", () => {
    const d = { server: false, local: false, admin: false, expect: [] as string[] };
    expect(parseDirective('server, expect "a \\"b\\"" expect "c" timeout 30', d)).toEqual([]);
    expect(d).toEqual({ server: true, local: false, admin: false, expect: ['a "b"', "c"], timeoutSec: 30 });
  });

  it("discovers docs/*.md and every README, not the generated reference or these fixtures", () => {
    const files = discoverFiles();
    expect(files).toContain("README.md");
    expect(files).toContain("packages/core/README.md");
    expect(files).toContain("clients/python/README.md");
    expect(files.some((f) => f.startsWith("docs/reference/"))).toBe(false);
    expect(files.some((f) => f.startsWith("tests/docs/fixtures/"))).toBe(false);
  });
});

describe("the runner", () => {
  it("runs samples against the engine and a server, and fails on each broken one with file:line", async () => {
    const { code, out } = await runner("tests/docs/fixtures/samples.md");
    expect(code, out).toBe(1);
    expect(out).toMatch(/✓ tests\/docs\/fixtures\/samples\.md:6 ts/);
    expect(out).toMatch(/✓ tests\/docs\/fixtures\/samples\.md:18 bash/);
    expect(out).toMatch(/✓ tests\/docs\/fixtures\/samples\.md:27 python/);
    expect(out).toMatch(/- tests\/docs\/fixtures\/samples\.md:35 skipped: shows a command that must not run here/);
    expect(out).toMatch(/✗ tests\/docs\/fixtures\/samples\.md:41 ts .*FAILED: exited with 1/);
    expect(out).toContain("this sample is broken on purpose");
    expect(out).toMatch(/✗ tests\/docs\/fixtures\/samples\.md:48 js .*FAILED: stdout lacks "43"/);
    expect(out).toMatch(
      /✗ tests\/docs\/fixtures\/samples\.md:54 ts .*FAILED: left behind \(now removed\): sandbox leaky-/,
    );
    expect(out).toMatch(
      /✗ tests\/docs\/fixtures\/samples\.md:63 bash .*FAILED: left behind \(now removed\): sandbox cli-leaky-/,
    );
    expect(out.trimEnd().split("\n").at(-1)).toBe("7 samples ran, 1 skipped, 4 failed");
  });

  it("copies the modules a prelude imports (./x.ts) beside the sample, and fails clearly on a missing one", async () => {
    const { code, out } = await runner("tests/docs/fixtures/prelude.md");
    expect(code, out).toBe(1);
    expect(out).toMatch(/✓ tests\/docs\/fixtures\/prelude\.md:4 ts/);
    expect(out).toMatch(
      /✗ tests\/docs\/fixtures\/prelude\.md:9 ts .*its prelude's module tests\/docs\/fixtures\/prelude\/not-there\.ts cannot be read/,
    );
    expect(out.trimEnd().split("\n").at(-1)).toBe("2 samples ran, 0 skipped, 1 failed");
  });

  it("fails on markup mistakes before running anything", async () => {
    const { code, out } = await runner("--list", "tests/docs/fixtures/markup.md");
    expect(code).toBe(1);
    expect(out).toContain("fixtures/markup.md:3: `skip` needs a reason");
    expect(out).toContain("fixtures/markup.md:8: a fenced block without a language");
  });
});
