// exec and runCode through a real Kiln server: results, streaming callbacks as output happens,
// abort, timeouts, and interpreter state.
import { AbortedError } from "@kiln/core";
import { beforeAll, describe, expect, it } from "vitest";
import { remoteKiln, sandbox, server } from "./helpers.ts";

/** The size of a file in the sandbox, in bytes (-1 when it does not exist). */
async function sizeOf(box: { exec(c: string): Promise<{ stdout: string }> }, path: string): Promise<number> {
  return Number((await box.exec(`stat -c %s ${path} 2>/dev/null || echo -1`)).stdout.trim());
}

/**
 * An onStdout that aborts once `text` has been printed, whatever the chunks: the command has
 * surely started then (a fixed delay is not that on a loaded machine), and print() writes its
 * newline separately.
 */
function abortOnceOut(text: string, controller: AbortController): (chunk: string) => void {
  let out = "";
  return (chunk) => {
    out += chunk;
    if (out.includes(text)) controller.abort();
  };
}

/** Whether the server's audit log shows a cancel of a call in `sandboxId` (the route, not a dropped connection). */
async function cancelAudited(sandboxId: string): Promise<boolean> {
  const { url, apiKey } = server();
  const answer = await fetch(`${url}/v1/audit?limit=200`, { headers: { authorization: `Bearer ${apiKey}` } });
  const { events } = (await answer.json()) as { events: { action: string; target: string | null; status: number }[] };
  return events.some((e) => e.action === "sandbox.cancel" && e.target === sandboxId && e.status === 204);
}

const kiln = remoteKiln();
let sb: Awaited<ReturnType<typeof sandbox>>;
beforeAll(async () => {
  sb = await sandbox(kiln);
});

describe("remote exec", () => {
  it("runs strings through sh and arrays as argv, with cwd, env and stdin", async () => {
    expect(await sb.exec("echo hello; echo oops >&2; exit 3")).toMatchObject({
      exitCode: 3,
      stdout: "hello\n",
      stderr: "oops\n",
      status: "error",
      truncated: false,
    });
    expect((await sb.exec(["printf", "%s|", "a b", "$HOME"])).stdout).toBe("a b|$HOME|");
    expect((await sb.exec("pwd && echo $X", { cwd: "/tmp", env: { X: "y" } })).stdout).toBe("/tmp\ny\n");
    expect((await sb.exec("cat", { stdin: "from stdin" })).stdout).toBe("from stdin");
    expect((await sb.exec("wc -c", { stdin: new TextEncoder().encode("12345") })).stdout.trim()).toBe("5");
  });

  it("calls onStdout/onStderr as output happens, before the command ends", async () => {
    const seen: { chunk: string; at: number }[] = [];
    const errs: string[] = [];
    const started = performance.now();
    const result = await sb.exec("echo one; sleep 1; echo two; echo bad >&2", {
      onStdout: (chunk) => seen.push({ chunk, at: performance.now() - started }),
      onStderr: (chunk) => errs.push(chunk),
    });
    expect(seen.map((s) => s.chunk).join("")).toBe("one\ntwo\n");
    expect(errs.join("")).toBe("bad\n");
    expect(result.stdout).toBe("one\ntwo\n");
    // "one" arrived about a second before the end.
    expect(seen[0]?.at ?? Infinity).toBeLessThan(result.durationMs - 500);
  });

  it("passes a throw from the caller's own callback on as it is", async () => {
    const mine = new Error("my callback failed");
    await expect(
      sb.exec("echo a; sleep 5", {
        onStdout: () => {
          throw mine;
        },
      }),
    ).rejects.toBe(mine);
  });

  it("cuts output at maxOutputBytes and reports timeouts", async () => {
    const big = await sb.exec("head -c 100000 /dev/zero | tr '\\0' x", { maxOutputBytes: 1000 });
    expect(big.truncated).toBe(true);
    expect(big.stdout.length).toBeLessThanOrEqual(1000);
    const slow = await sb.exec("sleep 30", { timeoutMs: 500 });
    expect(slow.status).toBe("timeout");
  });

  it("stops on abort with status killed, once the server has killed the command", async () => {
    const controller = new AbortController();
    const started = performance.now();
    const result = await sb.exec("echo started; sleep 31; echo never", {
      signal: controller.signal,
      onStdout: abortOnceOut("started\n", controller),
    });
    expect(result.status).toBe("killed");
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toBe("started\n");
    expect(performance.now() - started).toBeLessThan(5000);
    // As in-process: nothing of it runs any more when exec has returned (no polling).
    expect((await sb.exec("pgrep -fx 'sleep 31' || true")).stdout.trim()).toBe("");
    await expect(sb.exec("echo", { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it("an abort cancels the command on the server: a loop writing a file stops growing", async () => {
    const path = `/tmp/exec-abort-${Date.now()}`;
    const controller = new AbortController();
    const run = sb.exec(`while true; do echo x >> ${path}; sleep 0.01; done`, { signal: controller.signal });
    while ((await sizeOf(sb, path)) <= 0) await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    const result = await run;
    expect(result.status).toBe("killed");
    const after = await sizeOf(sb, path);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await sizeOf(sb, path)).toBe(after);
    expect(await cancelAudited(sb.id)).toBe(true);
  });

  it("checks arguments on this side with the in-process messages", async () => {
    await expect(sb.exec("")).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "command" });
    await expect(sb.exec("x", { timeoutMs: -1 })).rejects.toMatchObject({ field: "options.timeoutMs" });
  });

  it("runs concurrent commands", async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => sb.exec(`sleep 0.3; echo ${n}`)));
    expect(results.map((r) => r.stdout)).toEqual(["1\n", "2\n", "3\n", "4\n"]);
  });
});

describe("remote runCode", () => {
  it("keeps state between cells and returns the final value", async () => {
    await sb.runCode("x = 40");
    const run = await sb.runCode("x + 2");
    expect(run.status).toBe("ok");
    expect(run.results).toEqual([expect.objectContaining({ text: "42", isMainResult: true })]);
    const js = await sb.runCode("const a = [1, 2]; a.length", { language: "javascript" });
    expect(js.results[0]?.text).toBe("2");
  });

  it("returns the user's failure as data", async () => {
    const run = await sb.runCode("1 / 0");
    expect(run.status).toBe("error");
    expect(run.error).toMatchObject({ name: "ZeroDivisionError" });
  });

  it("streams stdout as it is printed and returns images", async () => {
    const chunks: { chunk: string; at: number }[] = [];
    const started = performance.now();
    const run = await sb.runCode(
      "import time, matplotlib.pyplot as plt\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')\nplt.plot([1, 2, 3]); plt.show()",
      { onStdout: (chunk) => chunks.push({ chunk, at: performance.now() - started }) },
    );
    expect(run.stdout).toBe("first\nsecond\n");
    expect(chunks.map((c) => c.chunk).join("")).toBe("first\nsecond\n");
    expect(chunks[0]?.at ?? Infinity).toBeLessThan(run.durationMs - 500);
    expect(run.results.some((r) => typeof r.png === "string" && r.png.length > 100)).toBe(true);
  });

  it("stops on abort with status killed", async () => {
    const controller = new AbortController();
    const run = await sb.runCode("import time\nprint('go', flush=True)\ntime.sleep(30)", {
      signal: controller.signal,
      onStdout: abortOnceOut("go\n", controller),
    });
    expect(run.status).toBe("killed");
    expect(run.stdout).toBe("go\n");
    // The context is usable again at once.
    expect((await sb.runCode("1 + 1")).results[0]?.text).toBe("2");
  });

  it("an abort interrupts the cell on the server: a loop writing a file stops growing", async () => {
    const path = `/tmp/code-abort-${Date.now()}`;
    const controller = new AbortController();
    const run = sb.runCode(
      `import time\nwhile True:\n    with open(${JSON.stringify(path)}, "a") as f:\n        f.write("x")\n    time.sleep(0.01)`,
      { signal: controller.signal },
    );
    while ((await sizeOf(sb, path)) <= 0) await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    const execution = await run;
    expect(execution.status).toBe("killed");
    // The interpreter's own answer (a KeyboardInterrupt), not a stream the client cut.
    expect(execution.error?.value).not.toContain("aborted by the caller");
    const after = await sizeOf(sb, path);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await sizeOf(sb, path)).toBe(after);
    expect(await cancelAudited(sb.id)).toBe(true);
    // The context lives on, with its state.
    expect((await sb.runCode("1 + 1")).results[0]?.text).toBe("2");
  });

  it("reports a timeout", async () => {
    const run = await sb.runCode("import time\ntime.sleep(10)", { timeoutMs: 500 });
    expect(run.status).toBe("timeout");
  });
});

describe("remote live stdin", () => {
  it("forwards each chunk while the command runs (an answer comes before stdin ends)", async () => {
    let answered: () => void = () => {};
    const firstAnswer = new Promise<void>((resolve) => {
      answered = resolve;
    });
    async function* input() {
      yield "one\n";
      // Only once the command has answered the first line: a stdin buffered to its end would hang here.
      await firstAnswer;
      yield new TextEncoder().encode("two\n");
    }
    const result = await sb.exec('while read l; do echo "got $l"; done; echo eof', {
      stdin: input(),
      onStdout: (chunk) => {
        if (chunk.includes("got one")) answered();
      },
      timeoutMs: 20_000,
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: "got one\ngot two\neof\n", status: "ok" });
  });

  it("takes bytes that are not UTF-8, intact", async () => {
    const bytes = new Uint8Array([0xff, 0x00, 0xfe, 0x80, 0x0a]);
    expect((await sb.exec("od -An -tx1", { stdin: bytes })).stdout.trim()).toBe("ff 00 fe 80 0a");
  });

  it("moves a few MiB of live stdin intact", async () => {
    const { createHash } = await import("node:crypto");
    const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    async function* chunks() {
      for (let at = 0; at < data.length; at += 300 * 1024) yield data.subarray(at, at + 300 * 1024);
    }
    const result = await sb.exec("sha256sum", { stdin: chunks() });
    expect(result.stdout).toBe(`${createHash("sha256").update(data).digest("hex")}  -\n`);
  });

  it("pulls the stdin only as fast as the command reads it (backpressure, not a buffer)", async () => {
    const CHUNK = 64 * 1024;
    const TOTAL = 64 * 1024 * 1024;
    let pulled = 0;
    async function* fast() {
      for (; pulled < TOTAL; pulled += CHUNK) yield new Uint8Array(CHUNK);
    }
    const result = sb.exec("sleep 3; wc -c", { stdin: fast(), timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2_000));
    const pulledWhileAsleep = pulled; // about 10 MiB measured here
    expect((await result).stdout.trim()).toBe(String(TOTAL));
    // Socket and pipe buffers hold a few MiB; a client that read ahead would have pulled it all.
    expect(pulledWhileAsleep).toBeLessThan(TOTAL / 3);
  });

  it("ends when the command ends, even with a stdin that never does", async () => {
    async function* forever() {
      for (;;) {
        yield "line\n";
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const result = await sb.exec("head -n 2", { stdin: forever(), timeoutMs: 20_000 });
    expect(result).toMatchObject({ exitCode: 0, stdout: "line\nline\n" });
    // The sandbox goes on answering.
    expect((await sb.exec("echo still")).stdout).toBe("still\n");
  });
});
