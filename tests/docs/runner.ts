// Runs extracted samples: each in its own child process, file and working directory, against the
// real engine and (for shell, Python and `server` samples) a real Kiln server, then removes what a
// sample left behind and says so. run.ts is the command line; runner.test.ts tests this with
// samples that break on purpose.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Kiln } from "@kiln/core";
import type { Sample } from "./extract.ts";

export const REPO = resolve(import.meta.dirname, "../..");
const DEFAULT_TIMEOUT_SEC = 180;
const OUTPUT_LIMIT = 256 * 1024;

/** The label every sample's sandbox carries: which checkout ran it (so a crashed run's are found). */
export const CHECKOUT_LABEL = {
  "kiln-docs": `docs-${createHash("sha256").update(REPO).digest("hex").slice(0, 10)}`,
};

export interface RunServer {
  url: string;
  adminKey: string;
}

export interface RunContext {
  /** Per-run folder under tests/docs/.work: the sample files (so `@kiln/*` resolve) and the shims. */
  workDir: string;
  /**
   * Per-run folder outside the repository for the samples' working directories: a sample's
   * `pnpm add` or stray file must never land in the workspace.
   */
  scratchDir: string;
  binDir: string;
  runId: string;
  server?: RunServer;
  /** A local Kiln to find and remove what samples leave behind. */
  kiln: Kiln;
}

export interface SampleResult {
  sample: Sample;
  status: "passed" | "failed" | "skipped";
  /** Why it failed or was skipped. */
  reason?: string;
  output: string;
  durationMs: number;
  /** Sandboxes (and snapshots, volumes) found after the sample and removed. */
  leftovers: string[];
}

export function where(sample: Sample): string {
  return `${relative(REPO, resolve(REPO, sample.file))}:${sample.line}`;
}

/** Makes the run's folder and the `kiln` and `pnpm kiln` shims a shell sample finds on PATH. */
export async function prepareRun(kiln: Kiln, server?: RunServer): Promise<RunContext> {
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
  const workDir = join(import.meta.dirname, ".work", runId);
  const binDir = join(workDir, "bin");
  await mkdir(binDir, { recursive: true });
  const scratchDir = await mkdtemp(join(tmpdir(), `kiln-docs-${runId}-`));
  const node = process.execPath;
  // The CLI runs with the preload too, so the sandboxes it makes (locally or through the server)
  // carry the sample's labels like those of TS samples.
  const cli = `--import "${join(import.meta.dirname, "preload.ts")}" "${join(REPO, "packages/cli/src/bin.ts")}"`;
  await writeFile(join(binDir, "kiln"), `#!/bin/sh\nexec "${node}" ${cli} "$@"\n`);
  // `pnpm kiln ...` (and `pnpm -s kiln ...`) as in the repository; anything else is the real pnpm.
  const realPnpm = await which("pnpm");
  await writeFile(
    join(binDir, "pnpm"),
    `#!/bin/sh
if [ "$1" = "-s" ] && [ "$2" = "kiln" ]; then shift 2; exec "${node}" ${cli} "$@"; fi
if [ "$1" = "kiln" ]; then shift; exec "${node}" ${cli} "$@"; fi
${realPnpm ? `exec "${realPnpm}" "$@"` : 'echo "pnpm: not installed" >&2; exit 127'}
`,
  );
  await chmod(join(binDir, "kiln"), 0o755);
  await chmod(join(binDir, "pnpm"), 0o755);
  return { workDir, scratchDir, binDir, runId, kiln, ...(server ? { server } : {}) };
}

async function which(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = join(dir, command);
    try {
      await import("node:fs/promises").then((fs) => fs.access(candidate, 1));
      if (!candidate.startsWith(join(import.meta.dirname, ".work"))) return candidate;
    } catch {}
  }
  return undefined;
}

/** Needs the runner's server: Python samples, shell ones unless marked `local`, TS/JS ones marked `server`. */
export function needsServer(sample: Sample): boolean {
  if (sample.kind === "shell") return !sample.directives.local;
  return sample.kind === "python" || sample.directives.server;
}

interface Tenant {
  apiKey: string;
  /** A fresh organisation's key; undefined for the admin key (the default organisation). */
  orgKey: boolean;
}

/** A fresh organisation and a `*` key in it, so this sample's sandboxes are told apart from the others'. */
async function tenantFor(server: RunServer, name: string, admin: boolean): Promise<Tenant> {
  if (admin) return { apiKey: server.adminKey, orgKey: false };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
  const org = await post("/v1/orgs", { name });
  const key = await post("/v1/keys", { name, scopes: ["*"], orgId: org.id });
  return { apiKey: key.key!, orgKey: true };
}

const FILE_EXT: Record<Sample["kind"], string> = { ts: "ts", js: "mjs", python: "py", shell: "sh" };

export async function runSample(sample: Sample, ctx: RunContext, index: number): Promise<SampleResult> {
  const started = performance.now();
  const result = (status: SampleResult["status"], output: string, reason?: string, leftovers: string[] = []) => ({
    sample,
    status,
    output,
    durationMs: performance.now() - started,
    leftovers,
    ...(reason !== undefined ? { reason } : {}),
  });
  if (sample.directives.skip) return result("skipped", "", sample.directives.skip);
  const slug = `${relative(REPO, resolve(REPO, sample.file)).replace(/[^a-zA-Z0-9]+/g, "-")}-${sample.line}`;
  const sampleLabel = `${ctx.runId}-${index}`;
  const labels = { ...CHECKOUT_LABEL, "kiln-docs-sample": sampleLabel };
  // Sample files of TS/JS sit in tests/docs/.work so `@kiln/*` and the frameworks resolve from
  // this workspace package; each runs in its own empty working directory outside the repository.
  const file = join(ctx.workDir, `${slug}.${FILE_EXT[sample.kind]}`);
  const cwd = join(ctx.scratchDir, slug);
  await mkdir(cwd, { recursive: true });
  let prelude = "";
  if (sample.directives.prelude) {
    const text = await readFile(join(REPO, sample.directives.prelude), "utf8").catch(() => undefined);
    if (text === undefined) return result("failed", "", `its prelude ${sample.directives.prelude} cannot be read`);
    prelude = `${text}\n`;
    // A prelude may import modules beside it (`from "./x.ts"`): they go beside the sample file.
    for (const [, dep] of text.matchAll(/from "\.\/([\w.-]+\.ts)"/g)) {
      const from = join(REPO, dirname(sample.directives.prelude), dep!);
      if (
        !(await copyFile(from, join(ctx.workDir, dep!)).then(
          () => true,
          () => false,
        ))
      ) {
        return result("failed", "", `its prelude's module ${relative(REPO, from)} cannot be read`);
      }
    }
  }
  await writeFile(file, prelude + sample.code);

  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KILN_URL;
  delete env.KILN_API_KEY;
  env.PATH = [ctx.binDir, dirname(process.execPath), env.PATH].join(":");
  env.KILN_DOCS_LABELS = JSON.stringify(labels);
  env.NO_COLOR = "1";
  let tenant: Tenant | undefined;
  if (needsServer(sample)) {
    if (!ctx.server) return result("failed", "", "needs the runner's server, and none was started");
    try {
      tenant = await tenantFor(ctx.server, `docs-${sampleLabel}`, sample.directives.admin);
    } catch (error) {
      return result("failed", "", `could not make the sample's organisation: ${String(error)}`);
    }
    env.KILN_URL = ctx.server.url;
    env.KILN_API_KEY = tenant.apiKey;
  }
  let argv: string[];
  switch (sample.kind) {
    case "ts":
    case "js":
      argv = [process.execPath, "--import", join(import.meta.dirname, "preload.ts"), file];
      break;
    case "python":
      argv = ["/usr/bin/python3", file];
      env.PYTHONPATH = [join(REPO, "clients/python/src"), env.PYTHONPATH].filter(Boolean).join(":");
      env.PYTHONDONTWRITEBYTECODE = "1";
      break;
    case "shell":
      argv = ["bash", "-e", "-o", "pipefail", file];
      break;
  }
  const timeoutSec = sample.directives.timeoutSec ?? DEFAULT_TIMEOUT_SEC;
  const run = await exec(argv, { cwd, env, timeoutMs: timeoutSec * 1000 });
  let reason: string | undefined;
  if (run.timedOut) reason = `timed out after ${timeoutSec} s`;
  else if (run.code !== 0) reason = `exited with ${run.code ?? run.signal}`;
  else {
    const missing = sample.directives.expect.filter((text) => !run.stdout.includes(text));
    if (missing.length > 0) reason = `stdout lacks ${missing.map((m) => JSON.stringify(m)).join(", ")}`;
  }
  const leftovers = await cleanUp(ctx, labels, tenant);
  if (!reason && leftovers.length > 0 && !sample.directives.leaves) {
    reason = `left behind (now removed): ${leftovers.join(", ")}; delete what a sample makes, or mark it <!-- sample: leaves sandboxes (why) -->`;
  }
  return result(reason ? "failed" : "passed", run.output, reason, leftovers);
}

/** Removes the sample's sandboxes (by label, and everything of its organisation) and its org's snapshots and volumes. */
async function cleanUp(ctx: RunContext, labels: Record<string, string>, tenant: Tenant | undefined): Promise<string[]> {
  const left: string[] = [];
  const sampleOnly = { "kiln-docs-sample": labels["kiln-docs-sample"]! };
  for (const info of await ctx.kiln.list({ labels: sampleOnly }).catch(() => [])) {
    left.push(`sandbox ${info.name ?? info.id}`);
    await ctx.kiln
      .get(info.id)
      .then((s) => s.delete())
      .catch(() => {});
  }
  if (tenant?.orgKey && ctx.server) {
    const remote = new Kiln({ url: ctx.server.url, apiKey: tenant.apiKey });
    try {
      for (const info of await remote.list()) {
        left.push(`sandbox ${info.name ?? info.id}`);
        await remote
          .get(info.id)
          .then((s) => s.delete())
          .catch(() => {});
      }
      for (const snap of await remote.snapshots.list()) {
        left.push(`snapshot ${snap.name}`);
        await remote.snapshots.delete(snap.name).catch(() => {});
      }
      for (const vol of await remote.volumes.list()) {
        left.push(`volume ${vol.name}`);
        await remote.volumes.delete(vol.name).catch(() => {});
      }
    } catch {
      // The server is gone: the run's final sweep (by the checkout label) removes what is left.
    } finally {
      await remote.close();
    }
  }
  return [...new Set(left)];
}

interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout and stderr interleaved, as a reader would have seen them (bounded). */
  output: string;
  timedOut: boolean;
}

export function exec(argv: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }) {
  return new Promise<ExecResult>((done) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a timeout kills everything it started
    });
    let stdout = "";
    let output = "";
    const add = (chunk: Buffer, isStdout: boolean) => {
      const text = chunk.toString("utf8");
      if (isStdout && stdout.length < OUTPUT_LIMIT) stdout += text;
      if (output.length < OUTPUT_LIMIT) output += text;
    };
    child.stdout.on("data", (c: Buffer) => add(c, true));
    child.stderr.on("data", (c: Buffer) => add(c, false));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {}
    }, options.timeoutMs);
    child.on("error", (error) => {
      output += `\n${String(error)}`;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, output, timedOut });
    });
  });
}

/** Runs `items` with at most `limit` at a time, in order of start; `onDone` as each ends. */
export async function inParallel<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  onDone: (result: R) => void,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
      onDone(results[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
