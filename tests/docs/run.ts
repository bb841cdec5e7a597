// The docs' sample runner: extracts every fenced code block of docs/*.md (not docs/reference/)
// and of every README.md in the repository, and runs it (conventions: extract.ts, docs/README.md).
//   node tests/docs/run.ts [--concurrency 2] [--list] [--verbose] [FILE.md ...]
// Prints one line per sample, the failures with file:line and their output, and last
//   "N samples ran, N skipped, N failed"
// which scripts/test.sh counts. Exits 1 when a sample or a file's markup fails.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Kiln } from "@kiln/core";
import { startServer } from "@kiln/server";
import { type Extracted, extractSamples, type Sample } from "./extract.ts";
import { installLabels } from "./preload.ts";
import {
  CHECKOUT_LABEL,
  inParallel,
  needsServer,
  prepareRun,
  REPO,
  type RunServer,
  runSample,
  type SampleResult,
  where,
} from "./runner.ts";

/** docs/*.md and every README.md git knows of (minus this runner's own fixtures). */
export function discoverFiles(): string[] {
  const tracked = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "--", "*.md"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\n")
    .filter(Boolean);
  return tracked
    .filter((f) => /^docs\/[^/]+\.md$/.test(f) || f === "README.md" || f.endsWith("/README.md"))
    .filter((f) => !f.startsWith("tests/docs/fixtures/") && !f.startsWith(".changeset/") && !f.includes("node_modules"))
    .sort();
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      concurrency: { type: "string", default: "2" },
      list: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
    },
  });
  const files = positionals.length > 0 ? positionals.map((f) => relative(REPO, resolve(f))) : discoverFiles();
  const all: Extracted = { samples: [], notCode: 0, problems: [] };
  for (const file of files) {
    const found = extractSamples(file, await readFile(join(REPO, file), "utf8"));
    all.samples.push(...found.samples);
    all.notCode += found.notCode;
    all.problems.push(...found.problems);
  }
  if (values.list) {
    for (const s of all.samples)
      console.log(`${where(s)} ${s.lang}${s.directives.skip ? ` skip (${s.directives.skip})` : ""}`);
    for (const p of all.problems) console.log(`${p.file}:${p.line}: ${p.message}`);
    return all.problems.length > 0 ? 1 : 0;
  }
  console.log(
    `${all.samples.length} samples in ${files.length} files (${all.notCode} blocks of output, data or configuration are not run)`,
  );

  // Every sandbox made in this process (the server's) carries the checkout label too.
  installLabels(CHECKOUT_LABEL);
  const kiln = new Kiln();
  await kiln.images.ensure();
  await sweep(kiln, "an earlier run");
  let server: { url: string; close(): Promise<void> } | undefined;
  let serverKiln: Kiln | undefined;
  let runServer: RunServer | undefined;
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-docs-samples-"));
  if (all.samples.some((s) => needsServer(s) && !s.directives.skip)) {
    const adminKey = `kiln_docs_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    const serverLog: string[] = [];
    // The server's own Kiln keeps two sandboxes warm: most shell and Python samples start with a create.
    serverKiln = new Kiln({ pool: { size: 2 } });
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir,
      adminKey,
      kiln: serverKiln,
      log: (line) => {
        serverLog.push(line);
        if (serverLog.length > 500) serverLog.shift();
      },
    });
    runServer = { url: server.url, adminKey };
    console.log(`server: ${server.url}`);
  }
  const ctx = await prepareRun(kiln, runServer);
  const started = performance.now();
  const results = await inParallel(
    all.samples,
    Math.max(1, Number(values.concurrency)),
    (sample, i) => runSample(sample, ctx, i),
    (r) => {
      console.log(line(r));
      if (values.verbose && r.status !== "skipped") console.log(r.output.trimEnd().replace(/^/gm, "    "));
    },
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  await server?.close();
  await serverKiln?.close();
  await sweep(kiln, "this run");
  await kiln.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(ctx.workDir, { recursive: true, force: true });
  await rm(ctx.scratchDir, { recursive: true, force: true });
  return report(results, all.problems, seconds);
}

/** Removes sandboxes of this checkout's sample runs that are still there. */
async function sweep(kiln: Kiln, what: string): Promise<void> {
  const left = await kiln.list({ labels: CHECKOUT_LABEL });
  if (left.length === 0) return;
  console.log(`removing ${left.length} sandbox(es) ${what} left: ${left.map((s) => s.name ?? s.id).join(", ")}`);
  await Promise.all(
    left.map((s) =>
      kiln.get(s.id).then(
        (sb) => sb.delete().catch(() => {}),
        () => {},
      ),
    ),
  );
}

function line(r: SampleResult): string {
  const secs = `${(r.durationMs / 1000).toFixed(1)}s`;
  if (r.status === "skipped") return `- ${where(r.sample)} skipped: ${r.reason}`;
  const mark = r.status === "passed" ? "✓" : "✗";
  const extra = r.leftovers.length > 0 ? ` (removed what it left: ${r.leftovers.join(", ")})` : "";
  return `${mark} ${where(r.sample)} ${r.sample.lang} ${secs}${r.status === "failed" ? ` FAILED: ${r.reason}` : extra}`;
}

function report(results: SampleResult[], problems: Extracted["problems"], seconds: string): number {
  const failed = results.filter((r) => r.status === "failed");
  const skipped = results.filter((r) => r.status === "skipped");
  const ran = results.length - skipped.length;
  for (const r of failed) {
    console.log(`\n── ${where(r.sample)} (${r.sample.lang}): ${r.reason}`);
    const out = r.output.trimEnd().split("\n");
    console.log(out.slice(-40).join("\n"));
  }
  for (const p of problems) console.log(`\n── ${p.file}:${p.line}: ${p.message}`);
  console.log(`\n${seconds} s`);
  const markup = problems.length > 0 ? `, ${problems.length} markup problem(s)` : "";
  console.log(`${ran} samples ran, ${skipped.length} skipped, ${failed.length + problems.length} failed${markup}`);
  return failed.length + problems.length > 0 ? 1 : 0;
}

// Only as a script: runner.test.ts imports discoverFiles.
if (import.meta.main) process.exitCode = await main();

export type { Sample };
