// createSandboxSession() against the AI SDK's Experimental_SandboxSession contract, every
// method on a real sandbox; then the session handed to tools through generateText.
import type { Sandbox } from "@kiln/core";
import { type Experimental_SandboxProcess, generateText, stepCountIs, tool } from "ai";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createSandboxSession, type KilnSandboxSession } from "../src/index.ts";
import { scriptedModel, testKiln, testSandbox, textOf, toolResultsSeen } from "./helpers.ts";

const kiln = testKiln();
let sandbox: Sandbox;
let session: KilnSandboxSession;

beforeAll(async () => {
  sandbox = await testSandbox(kiln);
  session = createSandboxSession(sandbox);
});

const decoder = new TextDecoder();

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads a stream until `until` is in what was read; fails after `timeoutMs`. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: string,
  timeoutMs = 10_000,
): Promise<string> {
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!text.includes(until)) {
    const timer = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`no "${until}" within ${timeoutMs} ms; read ${JSON.stringify(text)}`)),
        deadline - Date.now(),
      ),
    );
    const { done, value } = await Promise.race([reader.read(), timer]);
    if (done) throw new Error(`stream ended before "${until}"; read ${JSON.stringify(text)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe("files", () => {
  it("describes the sandbox for the model's instructions", () => {
    expect(session.description).toContain("/workspace");
    expect(session.description).toContain("Python 3");
    expect(createSandboxSession(sandbox, { description: "mine" }).description).toBe("mine");
  });

  it("writes and reads text, resolving relative paths against /workspace and creating parents", async () => {
    await session.writeTextFile({ path: "a/b/hello.txt", content: "héllo\n" });
    expect(await sandbox.files.readText("/workspace/a/b/hello.txt")).toBe("héllo\n");
    expect(await session.readTextFile({ path: "/workspace/a/b/hello.txt" })).toBe("héllo\n");
    expect(await session.readTextFile({ path: "a/x/../b/hello.txt" })).toBe("héllo\n");
  });

  it("reads line ranges, 1-based and inclusive, clamped at the end", async () => {
    await session.writeTextFile({ path: "lines.txt", content: "one\ntwo\nthree\nfour" });
    expect(await session.readTextFile({ path: "lines.txt", startLine: 2, endLine: 3 })).toBe("two\nthree");
    expect(await session.readTextFile({ path: "lines.txt", startLine: 3, endLine: 99 })).toBe("three\nfour");
    expect(await session.readTextFile({ path: "lines.txt", endLine: 1 })).toBe("one");
    await session.writeTextFile({ path: "crlf.txt", content: "a\r\nb\r\nc" });
    expect(await session.readTextFile({ path: "crlf.txt", startLine: 2 })).toBe("b\r\nc");
  });

  it("decodes and encodes other encodings", async () => {
    await session.writeBinaryFile({ path: "latin1.txt", content: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) });
    expect(await session.readTextFile({ path: "latin1.txt", encoding: "latin1" })).toBe("café");
    await session.writeTextFile({ path: "utf16.txt", content: "hi", encoding: "utf16le" });
    expect([...((await session.readBinaryFile({ path: "utf16.txt" })) ?? [])]).toEqual([0x68, 0, 0x69, 0]);
  });

  it("round-trips every byte value, and streams large files both ways", async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    await session.writeBinaryFile({ path: "bytes.bin", content: bytes });
    expect(await session.readBinaryFile({ path: "bytes.bin" })).toEqual(bytes);

    const big = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
    const parts = [big.subarray(0, 100_000), big.subarray(100_000, 250_000), big.subarray(250_000)];
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    await session.writeFile({ path: "big.bin", content: source });
    const stream = await session.readFile({ path: "big.bin" });
    expect(stream).not.toBeNull();
    expect(await readAll(stream as ReadableStream<Uint8Array>)).toEqual(big);
  });

  it("reads a missing file as null, and rejects writing over a directory", async () => {
    expect(await session.readFile({ path: "nope.txt" })).toBeNull();
    expect(await session.readBinaryFile({ path: "nope.txt" })).toBeNull();
    expect(await session.readTextFile({ path: "nope.txt" })).toBeNull();
    await expect(session.writeTextFile({ path: "a/b", content: "x" })).rejects.toThrow(/directory/i);
  });

  it("stats files and directories, following links", async () => {
    await sandbox.exec(
      "mkdir -p st/dir && printf 12345 > st/f && ln -s f st/link && ln -s dir st/dirlink && ln -s gone st/dangling",
    );
    expect(await session.stat({ path: "st/f" })).toEqual({ type: "file", size: 5 });
    expect((await session.stat({ path: "st/dir" }))?.type).toBe("directory");
    expect(await session.stat({ path: "st/link" })).toEqual({ type: "file", size: 5 });
    expect((await session.stat({ path: "st/dirlink" }))?.type).toBe("directory");
    expect(await session.stat({ path: "st/dangling" })).toBeNull();
    expect(await session.stat({ path: "st/missing" })).toBeNull();
    expect((await session.stat({ path: "/dev/null" }))?.type).toBe("other");
  });

  it("lists one directory without following links; null when missing, rejects for a file", async () => {
    const entries = await session.listDirectory({ path: "st" });
    expect(entries?.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: "dangling", type: "symlink" },
      { name: "dir", type: "directory" },
      { name: "dirlink", type: "symlink" },
      { name: "f", type: "file" },
      { name: "link", type: "symlink" },
    ]);
    expect(await session.listDirectory({ path: "no-such-dir" })).toBeNull();
    await expect(session.listDirectory({ path: "st/f" })).rejects.toThrow(/not a directory/i);
  });

  it("deletes files and links (not their targets); false when missing; rejects for a directory", async () => {
    await sandbox.exec("mkdir -p del/empty && echo x > del/f && ln -s f del/link");
    expect(await session.deleteFile({ path: "del/link" })).toBe(true);
    expect(await sandbox.files.exists("del/f")).toBe(true);
    expect(await session.deleteFile({ path: "del/f" })).toBe(true);
    expect(await session.deleteFile({ path: "del/f" })).toBe(false);
    await expect(session.deleteFile({ path: "del/empty" })).rejects.toThrow(/directory/i);
    expect(await sandbox.files.exists("del/empty")).toBe(true);
  });

  it("honours an aborted signal", async () => {
    const signal = AbortSignal.abort(new Error("stop"));
    await expect(session.readTextFile({ path: "lines.txt", abortSignal: signal })).rejects.toThrow("stop");
    await expect(session.writeTextFile({ path: "x.txt", content: "x", abortSignal: signal })).rejects.toThrow("stop");
  });
});

describe("run", () => {
  it("returns exit code, stdout and stderr, in a working directory and with env", async () => {
    expect(await session.run({ command: "echo out; echo err >&2; exit 3" })).toEqual({
      exitCode: 3,
      stdout: "out\n",
      stderr: "err\n",
    });
    await session.run({ command: "mkdir -p wd" });
    expect((await session.run({ command: "pwd", workingDirectory: "wd" })).stdout).toBe("/workspace/wd\n");
    expect((await session.run({ command: "pwd" })).stdout).toBe("/workspace\n");
    expect((await session.run({ command: 'echo "$GREETING"', env: { GREETING: "hi" } })).stdout).toBe("hi\n");
  });

  it("kills the command and rejects with the reason when aborted", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("user stopped it")), 300);
    await expect(session.run({ command: "sleep 30", abortSignal: controller.signal })).rejects.toThrow(
      "user stopped it",
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("notes a timeout in stderr", async () => {
    const quick = createSandboxSession(sandbox, { runTimeoutMs: 300 });
    const result = await quick.run({ command: "sleep 10" });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain("killed after 300 ms (timeout)");
  });
});

describe("spawn", () => {
  it("streams output while the process runs, and waits for its exit code", async () => {
    const proc = await session.spawn({ command: "echo first; sleep 1; echo second >&2; exit 7" });
    expect(proc.pid).toBeGreaterThan(0);
    expect("stdin" in proc).toBe(false);
    const started = Date.now();
    const stdout = proc.stdout.getReader();
    expect(await readUntil(stdout, "first\n")).toBe("first\n");
    expect(Date.now() - started).toBeLessThan(900); // before the process ended
    expect(decoder.decode(await readAll(proc.stderr))).toBe("second\n"); // the wrapper's marker is not there
    expect(await proc.wait()).toEqual({ exitCode: 7 });
    expect((await stdout.read()).done).toBe(true);
  });

  it("runs in a working directory with env", async () => {
    const proc = await session.spawn({ command: 'echo "$(pwd) $WHO"', workingDirectory: "wd", env: { WHO: "me" } });
    expect(decoder.decode(await readAll(proc.stdout))).toBe("/workspace/wd me\n");
    expect(await proc.wait()).toEqual({ exitCode: 0 });
  });

  it("reports a command that cannot start through its exit code and stderr", async () => {
    const proc = await session.spawn({ command: "true", workingDirectory: "no-such-dir" });
    expect((await proc.wait()).exitCode).toBe(127);
    expect(decoder.decode(await readAll(proc.stderr))).toContain("no-such-dir");
  });

  it("kills a running process; kill is idempotent", async () => {
    const proc = await session.spawn({ command: "sleep 60" });
    const started = Date.now();
    await proc.kill();
    await proc.kill();
    expect((await proc.wait()).exitCode).toBe(137);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await session.run({ command: `kill -0 ${proc.pid} 2>/dev/null || echo gone` })).stdout).toBe("gone\n");
  });

  it("kills on abortSignal, and wait() rejects with the reason", async () => {
    const controller = new AbortController();
    const proc = await session.spawn({ command: "sleep 60", abortSignal: controller.signal });
    controller.abort(new Error("cancelled by user"));
    await expect(proc.wait()).rejects.toThrow("cancelled by user");
  });

  describe("with live stdin", () => {
    async function interactive(command: string) {
      const proc = await session.spawn({ command, stdin: true });
      return proc as Experimental_SandboxProcess & { stdin: WritableStream<Uint8Array> };
    }
    const encode = (text: string) => new TextEncoder().encode(text);

    it("delivers each write while the process runs, and EOF on close", async () => {
      const proc = await interactive('while read line; do echo "got $line"; done; echo eof');
      const stdin = proc.stdin.getWriter();
      const stdout = proc.stdout.getReader();
      await stdin.write(encode("one\n"));
      expect(await readUntil(stdout, "got one\n")).toBe("got one\n"); // answered before stdin closed
      await stdin.write(encode("two\n"));
      expect(await readUntil(stdout, "got two\n")).toBe("got two\n");
      await stdin.close();
      expect(await readUntil(stdout, "eof\n")).toBe("eof\n");
      expect(await proc.wait()).toEqual({ exitCode: 0 });
    });

    it("moves large input intact, with backpressure", async () => {
      const proc = await interactive("sha256sum");
      const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) % 256);
      const writer = proc.stdin.getWriter();
      for (let at = 0; at < data.length; at += 512 * 1024) await writer.write(data.subarray(at, at + 512 * 1024));
      await writer.close();
      const { createHash } = await import("node:crypto");
      const expected = createHash("sha256").update(data).digest("hex");
      expect(decoder.decode(await readAll(proc.stdout))).toBe(`${expected}  -\n`);
      expect(await proc.wait()).toEqual({ exitCode: 0 });
    });

    it("gives EOF to a process whose stdin is closed before anything was written", async () => {
      const proc = await interactive("wc -c");
      await proc.stdin.close();
      expect(decoder.decode(await readAll(proc.stdout)).trim()).toBe("0");
      expect(await proc.wait()).toEqual({ exitCode: 0 });
    });

    it("rejects writes after the process has exited, without hanging", async () => {
      const proc = await interactive("exit 0");
      expect(await proc.wait()).toEqual({ exitCode: 0 });
      const writer = proc.stdin.getWriter();
      await expect(writer.write(encode("late\n"))).rejects.toThrow(/exited/);
    });

    it("is killed like any spawned process, leaving nothing behind", async () => {
      const proc = await interactive("cat");
      await proc.stdin.getWriter().write(encode("x\n"));
      await proc.kill();
      expect((await proc.wait()).exitCode).toBe(137);
      const leftovers = await session.run({
        command: "ls /tmp | grep -c kiln-stdin || true; pgrep -c -x sleep || true",
      });
      expect(leftovers.stdout).toBe("0\n0\n");
    });
  });
});

describe("in generateText", () => {
  it("reaches tools through experimental_sandbox, in their description and their execution", async () => {
    const shell = tool({
      description: ({ experimental_sandbox }) => `Run a shell command. ${experimental_sandbox?.description ?? ""}`,
      inputSchema: z.object({ command: z.string() }),
      execute: async ({ command }, { experimental_sandbox, abortSignal }) => {
        if (!experimental_sandbox) throw new Error("no sandbox");
        const { exitCode, stdout, stderr } = await experimental_sandbox.run({ command, abortSignal });
        return `exit ${exitCode}\n${stdout}${stderr}`;
      },
    });
    const readTool = tool({
      description: "Read a file",
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }, { experimental_sandbox }) =>
        (await experimental_sandbox?.readTextFile({ path })) ?? "missing",
    });
    const model = scriptedModel([
      [{ tool: "shell", input: { command: "python3 -c 'print(6 * 7)' > answer.txt && cat answer.txt" } }],
      [{ tool: "read", input: { path: "answer.txt" } }],
      "42",
    ]);
    const result = await generateText({
      model,
      tools: { shell, read: readTool },
      experimental_sandbox: session,
      stopWhen: stepCountIs(5),
      prompt: "What is 6 * 7?",
    });
    expect(result.text).toBe("42");
    const offered = model.doGenerateCalls[0]?.tools?.find((t) => t.name === "shell");
    expect(offered?.type === "function" && offered.description).toContain("Kiln sandbox");
    expect(textOf(toolResultsSeen(model, 1).get("shell"))).toBe("exit 0\n42\n");
    expect(textOf(toolResultsSeen(model, 2).get("read"))).toBe("42\n");
  });
});
