// Every byte out of a sandbox is bounded (issue 8, defect 1): hostile reads and results against
// the real engine must leave the Kiln process's memory flat.
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, type Sandbox, SandboxFileError } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const MIB = 1024 * 1024;
const kiln = testKiln();
let sb: Sandbox;
let local: string;
beforeAll(async () => {
  sb = await sandbox(kiln);
  local = await mkdtemp(join(tmpdir(), "kiln-limits-"));
});
afterAll(() => rm(local, { recursive: true, force: true }));

/** Runs fn while sampling this process's RSS and V8 heap; the peak growth over the start, in MiB. */
async function peakGrowth<T>(fn: () => Promise<T>): Promise<{ value: T; rssMiB: number; heapMiB: number }> {
  globalThis.gc?.();
  const start = process.memoryUsage();
  let rss = start.rss;
  let heap = start.heapUsed;
  const sample = setInterval(() => {
    const now = process.memoryUsage();
    rss = Math.max(rss, now.rss);
    heap = Math.max(heap, now.heapUsed);
  }, 20);
  try {
    const value = await fn();
    return { value, rssMiB: (rss - start.rss) / MIB, heapMiB: (heap - start.heapUsed) / MIB };
  } finally {
    clearInterval(sample);
  }
}

describe("bounded reads", () => {
  it("refuses a file over maxBytes naming its size and the limit, or returns its start with truncate", async () => {
    await sb.exec("head -c 300000 /dev/urandom > r.bin");
    const whole = Buffer.from(await sb.files.read("r.bin"));
    expect(whole.length).toBe(300000);
    const err = await sb.files.read("r.bin", { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxFileError);
    expect(err).toMatchObject({ code: "FILE_ERROR", errno: "EFBIG" });
    expect((err as Error).message).toContain("300000 bytes, over the limit of 1000");
    const head = Buffer.from(await sb.files.read("r.bin", { maxBytes: 1000, truncate: true }));
    expect(head.equals(whole.subarray(0, 1000))).toBe(true);
    expect((await sb.files.read("r.bin", { maxBytes: 300000 })).length).toBe(300000);
    expect(await sb.files.readText("r.bin", { maxBytes: 0, truncate: true })).toBe("");
    await expect(sb.files.read("r.bin", { maxBytes: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sb.files.read("r.bin", { maxBytes: 2 ** 40 })).rejects.toThrow(/options\.maxBytes/);
  });

  it("files.read('/proc/self/pagemap') and an endless pseudo-file stop at the limit; host memory stays flat", async () => {
    // The agent's own /proc is root's (it runs as effective uid 1000, non-dumpable): refused at once.
    await expect(sb.files.read("/proc/self/pagemap")).rejects.toBeInstanceOf(SandboxFileError);
    // A process of the sandbox user: its pagemap reads as long as it is asked (st_size 0).
    const pid = (await sb.runCode("import os\nos.getpid()")).results[0]?.text;
    const pagemap = `/proc/${pid}/pagemap`;
    const { value, rssMiB, heapMiB } = await peakGrowth(() =>
      sb.files.read(pagemap).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(value).toBeInstanceOf(SandboxFileError);
    expect((value as Error).message).toMatch(/more than 67108864 bytes/);
    // The default limit is 64 MiB; without it this grew past 3 GB.
    expect(rssMiB).toBeLessThan(400);
    expect(heapMiB).toBeLessThan(300);
    const start = await sb.files.read(pagemap, { maxBytes: 4 * MIB, truncate: true });
    expect(start.length).toBe(4 * MIB);
    // The sandbox still answers.
    expect((await sb.exec("echo ok")).stdout).toBe("ok\n");
  });

  it("download stops at maxBytes and leaves no partial file", async () => {
    await sb.exec("mkdir -p dl && head -c 200000 /dev/zero > dl/a && head -c 200000 /dev/zero > dl/b");
    const target = join(local, "one");
    await expect(sb.files.download("dl/a", target, { maxBytes: 1000 })).rejects.toMatchObject({ errno: "EFBIG" });
    await expect(stat(target)).rejects.toThrow();
    expect(await readdir(local)).toEqual([]);
    await sb.files.download("dl/a", target, { maxBytes: 200000 });
    expect((await stat(target)).size).toBe(200000);
    // A directory: the budget covers all files together.
    const dir = join(local, "dir");
    await expect(sb.files.download("dl", dir, { maxBytes: 300000 })).rejects.toMatchObject({ errno: "EFBIG" });
    expect((await readdir(dir)).filter((n) => n.endsWith(".part"))).toEqual([]);
  });
});

describe("bounded results", () => {
  it("4000 display()s of 1 MB keep host memory flat: results past the total cap are dropped", async () => {
    const {
      value: execution,
      rssMiB,
      heapMiB,
    } = await peakGrowth(() =>
      sb.runCode("for i in range(4000):\n    display('x' * 1_000_000)\n'done'", { timeoutMs: 120_000 }),
    );
    expect(execution.status).toBe("ok");
    expect(execution.truncated).toBe(true);
    // 16 MiB of results in all (DEFAULT_MAX_RESULT_BYTES); each 1 MB result fits whole.
    expect(execution.results.length).toBeGreaterThan(10);
    expect(execution.results.length).toBeLessThan(20);
    expect(rssMiB).toBeLessThan(400);
    expect(heapMiB).toBeLessThan(300);
  }, 180_000);
});
