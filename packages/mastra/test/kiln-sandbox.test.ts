// KilnSandbox honours Mastra's MastraSandbox contract against real Kiln sandboxes: lifecycle
// (id-keyed getOrCreate), executeCommand, writeFiles, processes, checkpoints, clone, info.
import type { Sandbox } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KilnSandbox, sandboxNameFor } from "../src/index.ts";
import { cleanUpNamed, sandbox as makeSandbox, TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();

/** A KilnSandbox on a fresh id, its container labelled and deleted after the file. */
function kilnSandbox(options: Partial<ConstructorParameters<typeof KilnSandbox>[0]> = {}): KilnSandbox {
  const id = options.id ?? uniqueName("ks");
  cleanUpNamed(kiln, options.name ?? sandboxNameFor(id));
  return new KilnSandbox({ kiln, id, sandboxOptions: { labels: TEST_LABELS }, ...options });
}

describe("lifecycle", () => {
  it("creates on first start, reconnects by id, stops keeping files, destroys", async () => {
    const id = uniqueName("life");
    const first = kilnSandbox({ id });
    expect(first.status).toBe("pending");
    expect(await first._start()).toEqual({ outcome: "created" });
    expect(first.status).toBe("running");
    await first.executeCommand("sh", ["-c", "echo kept > kept.txt"]);

    // Same id from another object (another process): the same container.
    const second = kilnSandbox({ id });
    expect(await second._start()).toEqual({ outcome: "connected" });
    expect((await second.executeCommand("cat", ["kept.txt"])).stdout).toBe("kept\n");

    await first._stop();
    expect(first.status).toBe("stopped");
    expect((await (await kiln.get(sandboxNameFor(id))).info()).state).toBe("stopped");
    // Lazy start: a command on a stopped sandbox starts it again.
    expect((await first.executeCommand("cat", ["kept.txt"])).stdout).toBe("kept\n");
    expect(first.status).toBe("running");

    await first._destroy();
    expect(first.status).toBe("destroyed");
    await expect(kiln.get(sandboxNameFor(id))).rejects.toThrow(/No sandbox/);
  });

  it("wraps an existing sandbox without owning it", async () => {
    const existing = await makeSandbox(kiln);
    const wrapped = new KilnSandbox({ sandbox: existing });
    expect(await wrapped._start()).toEqual({ outcome: "connected" });
    expect((await wrapped.executeCommand("echo", ["hi"])).stdout).toBe("hi\n");
    await wrapped._destroy();
    expect((await existing.info()).state).toBe("running");
  });

  it("starts again on its own when the container was stopped behind its back", async () => {
    const box = kilnSandbox();
    await box._start();
    await (await box.getSandbox()).stop();
    const result = await box.executeCommand("echo", ["back"]);
    expect(result.stdout).toBe("back\n");
  });

  it("reports info and instructions", async () => {
    const box = kilnSandbox({ sandboxOptions: { labels: TEST_LABELS, resources: { memoryMb: 512, cpus: 1 } } });
    expect((await box.getInfo()).status).toBe("pending");
    await box._start();
    const info = await box.getInfo();
    expect(info).toMatchObject({ id: box.id, name: "KilnSandbox", provider: "kiln", status: "running" });
    expect(info.resources).toEqual({ memoryMB: 512, cpuCores: 1 });
    expect(info.metadata).toMatchObject({ kilnName: sandboxNameFor(box.id), state: "running", labels: TEST_LABELS });
    expect(info.createdAt).toBeInstanceOf(Date);
    expect(box.getInstructions()).toMatch(/\/workspace.*no network access/s);
    expect(box.workingDirectory).toBe("/workspace");
  });
});

describe("executeCommand", () => {
  let box: KilnSandbox;
  beforeAll(async () => {
    box = kilnSandbox({ env: { FROM_OVERLAY: "overlay" } });
    await box._start();
  });
  afterAll(() => box._destroy());

  it("quotes arguments, captures both streams and the exit code", async () => {
    const echoed = await box.executeCommand("echo", ["hello world", "it's", "$HOME", "a;b"]);
    expect(echoed).toMatchObject({ success: true, exitCode: 0, stdout: "hello world it's $HOME a;b\n", stderr: "" });
    expect(echoed.command).toBe("echo 'hello world' 'it'\"'\"'s' '$HOME' 'a;b'");
    expect(echoed.executionTimeMs).toBeGreaterThanOrEqual(0);

    const failed = await box.executeCommand("sh", ["-c", "echo oops >&2; exit 3"]);
    expect(failed).toMatchObject({ success: false, exitCode: 3, stderr: "oops\n", timedOut: false, killed: false });
  });

  it("runs a shell line when given no args, in /workspace by default or in cwd", async () => {
    expect((await box.executeCommand("pwd && echo $((1+2))")).stdout).toBe("/workspace\n3\n");
    expect((await box.executeCommand("pwd", [], { cwd: "/tmp" })).stdout).toBe("/tmp\n");
  });

  it("passes env, merged over the sandbox's setEnv overlay", async () => {
    box.setEnv((env) => ({ ...env, TOKEN: "t1" }));
    const result = await box.executeCommand("sh", ["-c", 'echo "$FROM_OVERLAY $TOKEN $EXTRA"'], {
      env: { EXTRA: "x", TOKEN: "t2" },
    });
    expect(result.stdout).toBe("overlay t2 x\n");
  });

  it("times out, reporting it in the result", async () => {
    const started = Date.now();
    const result = await box.executeCommand("sleep", ["10"], { timeout: 500 });
    expect(result.success).toBe(false);
    expect(result.exitCode).not.toBe(0);
    expect(result.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("streams output, honours an abort signal and maxRetainedBytes", async () => {
    const chunks: string[] = [];
    await box.executeCommand("sh", ["-c", "echo one; echo two >&2"], {
      onStdout: (d) => chunks.push(`out:${d}`),
      onStderr: (d) => chunks.push(`err:${d}`),
    });
    expect(chunks.join("")).toContain("out:one");
    expect(chunks.join("")).toContain("err:two");

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const aborted = await box.executeCommand("sleep", ["10"], { abortSignal: controller.signal });
    expect(aborted).toMatchObject({ success: false, killed: true });

    const tail = await box.executeCommand("seq", ["1", "1000"], { maxRetainedBytes: 9 });
    expect(tail.stdout).toBe("999\n1000\n");
    expect(tail.stdoutTruncated).toBe(true);
    expect(tail.stdoutDroppedBytes).toBe(3893 - 9);
  });

  it("writeFiles writes contents and modes", async () => {
    await box.writeFiles([
      { path: "bin/run.sh", content: "#!/bin/sh\necho ran\n", mode: 0o755 },
      { path: "/workspace/data.bin", content: Buffer.from([0, 1, 2]) },
    ]);
    expect((await box.executeCommand("bin/run.sh")).stdout).toBe("ran\n");
    expect((await box.executeCommand("stat -c %s data.bin")).stdout).toBe("3\n");
    await expect(box.writeFiles([{ path: "x", content: "x", mode: 0o4755 }])).rejects.toThrow();
    const controller = new AbortController();
    controller.abort();
    await expect(box.writeFiles([{ path: "y", content: "y" }], { abortSignal: controller.signal })).rejects.toThrow(
      /abort/i,
    );
  });
});

describe("processes", () => {
  let box: KilnSandbox;
  beforeAll(async () => {
    box = kilnSandbox();
    await box._start();
  });
  afterAll(() => box._destroy());

  it("spawns, accumulates output and exit code, wait() is idempotent", async () => {
    const handle = await box.processes.spawn('echo hello; echo "err msg" >&2; exit 4');
    expect(Number(handle.pid)).toBeGreaterThan(0);
    const result = await handle.wait();
    expect(result).toMatchObject({ success: false, exitCode: 4, stdout: "hello\n", stderr: "err msg\n" });
    expect(handle.exitCode).toBe(4);
    expect((await handle.wait()).stdout).toBe(result.stdout);
    expect(handle.stdout).toBe("hello\n");
  });

  it("streams output before the process ends, and takes env and cwd", async () => {
    const chunks: string[] = [];
    const handle = await box.processes.spawn("for i in 1 2 3; do echo line-$i; sleep 0.2; done", {
      onStdout: (d) => chunks.push(d),
    });
    await expect.poll(() => chunks.length, { timeout: 5_000 }).toBeGreaterThan(0);
    expect(handle.exitCode).toBeUndefined();
    await handle.wait();
    expect(chunks.join("")).toBe("line-1\nline-2\nline-3\n");

    const env = await box.processes.spawn('echo "$MY_VAR $(pwd)"', { env: { MY_VAR: "v" }, cwd: "/tmp" });
    expect((await env.wait()).stdout).toBe("v /tmp\n");
  });

  it("lists, gets and kills a running process", async () => {
    const handle = await box.processes.spawn("sleep 60");
    const listed = (await box.processes.list()).find((p) => p.pid === handle.pid);
    expect(listed).toEqual({ pid: handle.pid, running: true, command: "sleep 60" });
    expect((await box.processes.get(handle.pid))?.pid).toBe(handle.pid);

    expect(await box.processes.kill(handle.pid)).toBe(true);
    const result = await handle.wait();
    expect(result.success).toBe(false);
    expect(result.killed).toBe(true);
    expect(await handle.kill()).toBe(false);
  });

  it("kills on an abort signal, even one aborted before spawning", async () => {
    const controller = new AbortController();
    controller.abort();
    const started = Date.now();
    const handle = await box.processes.spawn("sleep 60", { abortSignal: controller.signal });
    expect((await handle.wait()).success).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("sendStdin feeds a running process line by line; closeStdin ends its input", async () => {
    const handle = await box.processes.spawn('while read -r l; do echo "got $l"; done; echo eof');
    await handle.sendStdin("one\n");
    await expect.poll(() => handle.stdout, { timeout: 10_000 }).toBe("got one\n");
    // Written later, while the process is still running, and answered before the next write.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handle.exitCode).toBeUndefined();
    await handle.sendStdin("two\n");
    await expect.poll(() => handle.stdout, { timeout: 10_000 }).toBe("got one\ngot two\n");
    expect(handle.exitCode).toBeUndefined();

    await handle.closeStdin();
    await handle.closeStdin(); // idempotent while the process finishes
    const result = await handle.wait();
    expect(result).toMatchObject({ success: true, exitCode: 0, stdout: "got one\ngot two\neof\n" });
    await expect(handle.sendStdin("late\n")).rejects.toThrow(/exited/);
    await expect(handle.closeStdin()).rejects.toThrow(/exited/);
  });

  it("refuses writes after closeStdin, and kill ends a process still reading", async () => {
    const closed = await box.processes.spawn("cat; sleep 60");
    await closed.sendStdin("a");
    await closed.closeStdin();
    await expect(closed.sendStdin("b")).rejects.toThrow(/closed stdin/);
    await expect.poll(() => closed.stdout, { timeout: 10_000 }).toBe("a");
    await closed.kill();

    const reading = await box.processes.spawn('while read -r l; do echo "got $l"; done');
    await reading.sendStdin("x\n");
    await expect.poll(() => reading.stdout, { timeout: 10_000 }).toBe("got x\n");
    expect(await reading.kill()).toBe(true);
    expect(await reading.wait()).toMatchObject({ success: false, killed: true, stdout: "got x\n" });
    await expect(reading.sendStdin("y\n")).rejects.toThrow(/exited/);
  });

  it("a process may exit on its own with stdin still open", async () => {
    const handle = await box.processes.spawn('read -r l; echo "first $l"');
    await handle.sendStdin("x\nmore\n");
    expect(await handle.wait()).toMatchObject({ success: true, exitCode: 0, stdout: "first x\n" });
    await expect(handle.sendStdin("y\n")).rejects.toThrow(/exited/);
  });

  it("pipes through the handle's writer stream", async () => {
    const handle = await box.processes.spawn("tr a-z A-Z");
    handle.writer.write("hello ");
    handle.writer.end("writer\n");
    expect(await handle.wait()).toMatchObject({ success: true, stdout: "HELLO WRITER\n" });
  });

  it('stdinMode "ignore" gives the command an empty stdin and no way to write', async () => {
    const handle = await box.processes.spawn("cat; echo done", { stdinMode: "ignore" });
    expect(await handle.wait()).toMatchObject({ success: true, stdout: "done\n" });
    const running = await box.processes.spawn("sleep 60", { stdinMode: "ignore" });
    await expect(running.sendStdin("x")).rejects.toThrow(/stdinMode "ignore"/);
    await expect(running.closeStdin()).rejects.toThrow(/stdinMode "ignore"/);
    await running.kill();
  });

  it("stop() kills what is still running", async () => {
    const other = kilnSandbox();
    const handle = await other.processes.spawn("sleep 60");
    await other._stop();
    expect((await handle.wait()).success).toBe(false);
    await other._destroy();
  });
});

describe("checkpoints and clones", () => {
  it("snapshot() saves a checkpoint a new sandbox starts from; clone() inherits settings", async () => {
    const checkpointName = uniqueName("ckpt");
    const original = kilnSandbox({ checkpointName });
    expect(original.supportsCheckpoints).toBe(true);
    await original.executeCommand("sh", ["-c", "echo saved > saved.txt"]);
    await original.snapshot();
    await original.executeCommand("sh", ["-c", "echo second > second.txt"]);
    await original.snapshot(); // a second save replaces the first as the newest
    const versions = (await kiln.snapshots.list()).filter((s) => s.name.startsWith(`${checkpointName}.`));
    expect(versions).toHaveLength(1);

    const cloneId = uniqueName("clone");
    cleanUpNamed(kiln, sandboxNameFor(cloneId));
    const clone = original.clone({ id: cloneId, checkpointName, env: { CLONED: "yes" } });
    expect(clone).toBeInstanceOf(KilnSandbox);
    expect(clone.id).toBe(cloneId);
    expect(await clone._start()).toEqual({ outcome: "created" });
    const result = await clone.executeCommand("sh", ["-c", 'cat saved.txt second.txt; echo "$CLONED"']);
    expect(result.stdout).toBe("saved\nsecond\nyes\n");
    expect((await clone.getInfo()).metadata).toMatchObject({ labels: TEST_LABELS });

    await clone._destroy();
    await original._destroy();
    for (const v of versions) await kiln.snapshots.delete(v.name).catch(() => {});
  });

  it("an attached sandbox without a Kiln cannot be seeded, so it does not claim checkpoints", async () => {
    const existing: Sandbox = await makeSandbox(kiln);
    expect(new KilnSandbox({ sandbox: existing }).supportsCheckpoints).toBe(false);
    expect(() => new KilnSandbox({ sandbox: existing }).clone()).toThrow(/needs a sandbox made with \{ kiln \}/);
  });
});
