// Starts test/fixtures/serve.ts as a child process and reads its RSS from /proc.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export interface ChildServer {
  url: string;
  key: string;
  pid: number;
  /** Resident memory of the server process, in bytes. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

export async function startChildServer(env: Record<string, string> = {}): Promise<ChildServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-child-server-"));
  const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, "fixtures/serve.ts")], {
    env: { ...process.env, KILN_DATA_DIR: dataDir, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the server exited with ${code} before it listened`)));
  });
  const { url, key, pid } = JSON.parse(line) as { url: string; key: string; pid: number };
  return {
    url,
    key,
    pid,
    async rss() {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
