import { beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, type Sandbox } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();
let sb: Sandbox;
beforeAll(async () => {
  sb = await sandbox(kiln, { env: { GREETING: "hello from env" } });
});

describe("exec", () => {
  it("runs a string through sh -c and an array as argv", async () => {
    const shell = await sb.exec("echo $((6 * 7)) && echo oops >&2");
    expect(shell).toMatchObject({ exitCode: 0, status: "ok", stdout: "42\n", stderr: "oops\n", truncated: false });
    const argv = await sb.exec(["printf", "%s|", "a b", "$HOME", "*"]);
    expect(argv.stdout).toBe("a b|$HOME|*|");
  });

  it("reports a non-zero exit as a result, not a throw", async () => {
    const result = await sb.exec("exit 3");
    expect(result).toMatchObject({ exitCode: 3, status: "error" });
    const missing = await sb.exec(["/no/such/binary"]);
    expect(missing.status).toBe("error");
    expect(missing.exitCode).not.toBe(0);
  });

  it("uses cwd, sandbox env and per-call env", async () => {
    expect((await sb.exec("pwd")).stdout).toBe("/workspace\n");
    await sb.exec("mkdir -p sub/dir");
    expect((await sb.exec("pwd", { cwd: "sub/dir" })).stdout).toBe("/workspace/sub/dir\n");
    expect((await sb.exec("echo $GREETING")).stdout).toBe("hello from env\n");
    expect((await sb.exec("echo $GREETING-$EXTRA", { env: { GREETING: "over", EXTRA: "x" } })).stdout).toBe("over-x\n");
  });

  it("feeds stdin, text and binary", async () => {
    expect((await sb.exec("tr a-z A-Z", { stdin: "shout\n" })).stdout).toBe("SHOUT\n");
    const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
    const result = await sb.exec("wc -c", { stdin: bytes });
    expect(result.stdout.trim()).toBe("300000");
  });

  it("forwards a live stdin stream as it yields, and closes it at the end", async () => {
    const seen: string[] = [];
    let replied!: () => void;
    const echoed = new Promise<void>((resolve) => {
      replied = resolve;
    });
    async function* typing() {
      yield "first line\n";
      await echoed; // the command answered the first line before the second is sent
      yield Buffer.from("second line\n");
    }
    const result = await sb.exec('while read -r line; do echo "got: $line"; done; echo eof', {
      stdin: typing(),
      onStdout: (chunk) => {
        seen.push(chunk);
        if (chunk.includes("got: first")) replied();
      },
    });
    expect(result.stdout).toBe("got: first line\ngot: second line\neof\n");
    expect(seen[0]).toBe("got: first line\n");
  });

  it("streams output through callbacks while the command runs", async () => {
    const seen: { at: number; chunk: string }[] = [];
    const started = performance.now();
    const result = await sb.exec("echo first; sleep 0.5; echo second", {
      onStdout: (chunk) => seen.push({ at: performance.now() - started, chunk }),
    });
    expect(seen.map((s) => s.chunk).join("")).toBe("first\nsecond\n");
    expect(seen[0]?.chunk).toBe("first\n");
    expect(seen[0]?.at).toBeLessThan(400);
    expect(result.stdout).toBe("first\nsecond\n");
  });

  it("kills at timeoutMs with status timeout", async () => {
    const started = performance.now();
    const result = await sb.exec("sleep 30", { timeoutMs: 500 });
    expect(result.status).toBe("timeout");
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it("caps output per stream and says it truncated", async () => {
    const result = await sb.exec("head -c 200000 /dev/zero | tr '\\0' a", { maxOutputBytes: 1000 });
    expect(result.stdout.length).toBe(1000);
    expect(result.truncated).toBe(true);
    expect(result.status).toBe("ok");
  });

  it("decodes invalid UTF-8 with replacement characters", async () => {
    const result = await sb.exec("printf 'ok \\377\\376 end'");
    expect(result.stdout).toBe("ok \uFFFD\uFFFD end");
  });

  it("stops on abort with status killed", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const result = await sb.exec("sleep 30", { signal: controller.signal });
    expect(result.status).toBe("killed");
    expect(result.durationMs).toBeLessThan(5000);
  });

  it("runs commands concurrently over one connection", async () => {
    const started = performance.now();
    const results = await Promise.all([1, 2, 3, 4].map((n) => sb.exec(`sleep 0.5; echo ${n}`)));
    expect(results.map((r) => r.stdout)).toEqual(["1\n", "2\n", "3\n", "4\n"]);
    expect(performance.now() - started).toBeLessThan(1800);
  });

  it("rejects malformed input naming the field, and the sandbox stays usable", async () => {
    await expect(sb.exec({ cmd: "ls" } as never)).rejects.toThrow(InvalidArgumentError);
    await expect(sb.exec("ls", { timeoutMs: Number.NaN })).rejects.toThrow(/options.timeoutMs/);
    await expect(sb.exec("ls", { timeoutMs: -5 })).rejects.toThrow(/options.timeoutMs/);
    await expect(sb.exec(["ls", 3 as never])).rejects.toThrow(/command\[1\]/);
    await expect(sb.exec("ls", { cwd: "../etc" })).rejects.toThrow(/options.cwd/);
    await expect(sb.exec("ls", { env: { "BAD-NAME": "x" } })).rejects.toThrow(/options.env.BAD-NAME/);
    await expect(sb.exec("")).rejects.toThrow(/command/);
    expect((await sb.exec("echo still fine")).stdout).toBe("still fine\n");
  });
});
