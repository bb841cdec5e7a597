import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "vitest";

export const BIN = resolve(import.meta.dirname, "../src/bin.ts");

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  /** Called with each stdout chunk and the ms since start, to see that output streams. */
  onStdout?: (chunk: string, atMs: number) => void;
  timeoutMs?: number;
  /** Sent to the child once its first stdout arrives (a Ctrl-C, say). */
  signalOnOutput?: NodeJS.Signals;
  /** Close the read end of the child's stdout once output arrives (as `| head -1` does). */
  closeOnOutput?: boolean;
}

/** A config dir of its own, so a developer's `kiln login` never leaks into a test. */
export const CONFIG_HOME = await mkdtemp(join(tmpdir(), "kiln-cli-test-config-"));

/** The environment a test's kiln sees: no server from the developer's shell, no colour. */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: CONFIG_HOME, NO_COLOR: "1" };
  delete env.KILN_URL;
  delete env.KILN_API_KEY;
  delete env.FORCE_COLOR;
  return { ...env, ...extra };
}

/** Runs the kiln binary as a child process (node runs the TypeScript directly). */
export function kiln(args: string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], {
      env: baseEnv(options.env),
      cwd: options.cwd ?? process.cwd(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(chunk, Date.now() - started);
      if (options.signalOnOutput) child.kill(options.signalOnOutput);
      if (options.closeOnOutput) child.stdout.destroy();
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 50_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Runs kiln with --json, expects exit 0 and returns the parsed stdout. */
export async function kilnJson<T = Record<string, unknown>>(args: string[], options?: RunOptions): Promise<T> {
  const run = await kiln([...args, "--json"], options);
  expect(run.code, `kiln ${args.join(" ")}: ${run.stderr}`).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** The shape of every failure: exactly one line on stderr, starting "kiln:" or commander's "error:", no stack trace. */
export function expectOneLineError(run: Run, code: number, pattern?: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  const lines = run.stderr.trim().split("\n");
  const errorLines = lines.filter((l) => /^(kiln:|error:)/.test(l));
  expect(errorLines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  if (pattern) expect(errorLines[0]).toMatch(pattern);
}

/** A `kiln serve` child on a free port with its own data dir (a fresh admin key), as a user starts it. */
export interface ServeChild {
  url: string;
  adminKey: string;
  /** What it printed on stderr so far (the admin key, once). */
  stderr(): string;
  /** SIGTERM, and waits for it to exit: its exit code. */
  stop(): Promise<number | null>;
}

export async function startKilnServe(dataDir: string): Promise<ServeChild> {
  const server: ChildProcess = spawn(process.execPath, [BIN, "serve", "--port", "0", "--data-dir", dataDir, "--json"], {
    env: baseEnv({ KILN_ADMIN_KEY: "" }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  server.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  let stdout = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not print its URL: ${stderr}`)), 60_000);
    server.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      try {
        resolve((JSON.parse(stdout) as { url: string }).url);
        clearTimeout(timer);
      } catch {
        // not the whole object yet
      }
    });
    server.on("exit", (code) => reject(new Error(`kiln serve exited ${code}: ${stderr}`)));
  });
  return {
    url,
    adminKey: (await readFile(join(dataDir, "admin.key"), "utf8")).trim(),
    stderr: () => stderr,
    stop: async () => {
      if (server.exitCode !== null || server.signalCode !== null) return server.exitCode;
      const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
      server.kill("SIGTERM");
      return exited;
    },
  };
}
