import { beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, type Sandbox } from "../src/index.ts";
import { sandbox, TEST_LABELS, testKiln } from "./helpers.ts";

const kiln = testKiln();
let sb: Sandbox;
beforeAll(async () => {
  sb = await sandbox(kiln, { env: { KILN_TEST_ENV: "from-create" } });
});

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("runCode: Python", () => {
  it("keeps variables, imports and functions between calls; returns the final expression", async () => {
    const first = await sb.runCode("import math\nx = 20\ndef double(n):\n    return n * 2");
    expect(first).toMatchObject({ status: "ok", results: [] });
    expect(first.error).toBeUndefined();
    const second = await sb.runCode("double(x) + math.floor(2.5)");
    expect(second.status).toBe("ok");
    expect(second.results).toEqual([{ text: "42", isMainResult: true }]);
  });

  it("sees the sandbox environment", async () => {
    const result = await sb.runCode("import os; os.environ['KILN_TEST_ENV']");
    expect(result.results[0]?.text).toBe("'from-create'");
  });

  it("returns a DataFrame as text and html", async () => {
    const result = await sb.runCode("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})");
    const main = result.results.find((r) => r.isMainResult);
    expect(main?.text).toMatch(/a\s+b/);
    expect(main?.html).toMatch(/<table/);
  });

  it("returns a matplotlib chart as a PNG without plt.show()", async () => {
    const result = await sb.runCode(
      "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.title('chart')\nprint('drawn')",
    );
    expect(result.status).toBe("ok");
    expect(result.stdout).toBe("drawn\n");
    const images = result.results.filter((r) => r.png);
    expect(images).toHaveLength(1);
    const png = Buffer.from(images[0]?.png ?? "", "base64");
    expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(png.length).toBeGreaterThan(1000);
    // Figures are closed after the cell: the next cell does not repeat the chart.
    expect((await sb.runCode("1")).results.filter((r) => r.png)).toHaveLength(0);
  });

  it("returns display() outputs in order before the main result", async () => {
    const result = await sb.runCode("display('first')\ndisplay({'k': 1})\n'last'");
    expect(result.results.map((r) => [r.text, r.isMainResult])).toEqual([
      ["'first'", false],
      ["{'k': 1}", false],
      ["'last'", true],
    ]);
  });

  it("reports exceptions as data with a traceback pointing at the user's line", async () => {
    const result = await sb.runCode("a = 1\nb = 0\nc = a / b");
    expect(result.status).toBe("error");
    expect(result.error?.name).toBe("ZeroDivisionError");
    expect(result.error?.value).toMatch(/division by zero/);
    expect(result.error?.traceback).toMatch(/line 3/);
    expect(result.error?.traceback).toMatch(/c = a \/ b/);
    expect(result.error?.traceback).not.toMatch(/kernel_python/);
    const syntax = await sb.runCode("def broken(:\n  pass");
    expect(syntax.error?.name).toBe("SyntaxError");
  });

  it("streams stdout and stderr while the cell runs, in order", async () => {
    // Chunk boundaries are the interpreter's business; the order of the streams is ours.
    const runs: [string, string][] = [];
    const push = (stream: string, chunk: string) => {
      const last = runs.at(-1);
      if (last?.[0] === stream) last[1] += chunk;
      else runs.push([stream, chunk]);
    };
    const result = await sb.runCode(
      "import sys, time\nprint('one', flush=True)\ntime.sleep(0.4)\nprint('two', file=sys.stderr, flush=True)\nprint('three')",
      { onStdout: (c) => push("out", c), onStderr: (c) => push("err", c) },
    );
    expect(runs).toEqual([
      ["out", "one\n"],
      ["err", "two\n"],
      ["out", "three\n"],
    ]);
    expect(result.stdout).toBe("one\nthree\n");
    expect(result.stderr).toBe("two\n");
  });

  it("interrupts a runaway cell at timeoutMs and keeps the context's state", async () => {
    await sb.runCode("kept = 'still here'");
    const result = await sb.runCode("while True: pass", { timeoutMs: 1000 });
    expect(result.status).toBe("timeout");
    expect(result.error?.name).toBe("TimeoutError");
    expect((await sb.runCode("kept")).results[0]?.text).toBe("'still here'");
  });

  it("restarts a context that ignores the interrupt, and says its state was lost", async () => {
    const ctx = { context: "stubborn" };
    await sb.runCode("lost = 1", ctx);
    const result = await sb.runCode(
      "import time\nwhile True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass",
      { ...ctx, timeoutMs: 800 },
    );
    expect(result.status).toBe("timeout");
    expect(result.error?.value).toMatch(/restarted|lost/i);
    expect(result.contextRestarted).toBe(true);
    const after = await sb.runCode("'lost' in globals()", ctx);
    expect(after.results[0]?.text).toBe("False");
  });

  it("restarts a crashed context on the next call", async () => {
    const ctx = { context: "crashy" };
    const crash = await sb.runCode("import os\nos._exit(3)", ctx);
    expect(crash.status).toBe("error");
    expect(crash.error?.name).toBe("ContextCrashed");
    expect(crash.contextRestarted).toBe(true);
    const next = await sb.runCode("1 + 1", ctx);
    expect(next).toMatchObject({ status: "ok", results: [{ text: "2", isMainResult: true }], contextRestarted: false });
    expect(next.agentDurationMs).toBeGreaterThanOrEqual(0);
    expect(next.agentDurationMs).toBeLessThanOrEqual(next.durationMs);
  });

  it("a kernel killed while idle: the next cell says the context restarted, not a bare NameError", async () => {
    const ctx = { context: "killed-idle" };
    const pid = (await sb.runCode("import os\nkept = 1\nos.getpid()", ctx)).results[0]?.text;
    expect((await sb.exec(`kill -9 ${pid}`)).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const after = await sb.runCode("kept + 1", ctx);
    expect(after.status).toBe("error");
    expect(after.contextRestarted).toBe(true);
    expect(after.error?.name).toBe("NameError");
    expect(after.error?.value).toMatch(/was restarted/);
  });

  it("keeps named contexts apart", async () => {
    await sb.runCode("who = 'alpha'", { context: "alpha" });
    await sb.runCode("who = 'beta'", { context: "beta" });
    expect((await sb.runCode("who", { context: "alpha" })).results[0]?.text).toBe("'alpha'");
    expect((await sb.runCode("who", { context: "beta" })).results[0]?.text).toBe("'beta'");
  });

  it("kills a memory bomb with status oom", async () => {
    const bomb = await kiln.create({ resources: { memoryMb: 200 }, labels: TEST_LABELS });
    try {
      const result = await bomb.runCode("b = []\nwhile True: b.append(bytearray(20 * 1024 * 1024))", {
        timeoutMs: 30_000,
      });
      expect(result.status).toBe("oom");
      expect((await bomb.runCode("'recovered'")).results[0]?.text).toBe("'recovered'");
    } finally {
      await bomb.delete();
    }
  });
});

describe("runCode: JavaScript and TypeScript", () => {
  it("keeps const/let between calls, supports top-level await, returns the final value", async () => {
    const js = { language: "javascript" as const };
    await sb.runCode("const base = 40; let counter = 1;", js);
    await sb.runCode("const fetched = await new Promise((r) => setTimeout(() => r(1), 10));", js);
    const result = await sb.runCode("base + counter + fetched", js);
    expect(result.status).toBe("ok");
    expect(result.results).toEqual([expect.objectContaining({ text: "42", isMainResult: true })]);
    // Re-running a cell that declares a const is fine, like in a notebook.
    expect((await sb.runCode("const base = 1; base", js)).results[0]?.text).toBe("1");
  });

  it("strips TypeScript types", async () => {
    const ts = { language: "typescript" as const };
    await sb.runCode("interface Point { x: number; y: number }\nconst p: Point = { x: 3, y: 4 };", ts);
    const result = await sb.runCode("function norm(q: Point): number { return Math.hypot(q.x, q.y); }\nnorm(p)", ts);
    expect(result.results[0]?.text).toBe("5");
  });

  it("reports errors with name, message and stack, and streams console output", async () => {
    const out: string[] = [];
    const result = await sb.runCode("console.log('before');\nnull.boom;", {
      language: "javascript",
      onStdout: (c) => out.push(c),
    });
    expect(out.join("")).toBe("before\n");
    expect(result.status).toBe("error");
    expect(result.error?.name).toBe("TypeError");
    expect(result.error?.traceback).toMatch(/cell/);
  });

  it("interrupts a runaway loop and keeps state", async () => {
    const js = { language: "javascript" as const, context: "loop" };
    await sb.runCode("globalThis.mark = 7", js);
    const result = await sb.runCode("while (true) {}", { ...js, timeoutMs: 800 });
    expect(result.status).toBe("timeout");
    expect((await sb.runCode("mark", js)).results[0]?.text).toBe("7");
  });
});

describe("runCode: arguments", () => {
  it("rejects malformed input naming the field", async () => {
    await expect(sb.runCode(42 as never)).rejects.toThrow(InvalidArgumentError);
    await expect(sb.runCode("1", { language: "ruby" as never })).rejects.toThrow(/options.language/);
    await expect(sb.runCode("1", { context: "../x" })).rejects.toThrow(/options.context/);
    await expect(sb.runCode("1", { timeoutMs: 0 })).rejects.toThrow(/options.timeoutMs/);
  });
});
