// Tests for kernel_js.mjs, driven the way the agent drives it (PROTOCOL.md, "Agent <-> kernel"):
// fd 1 / fd 2 = output, fd 3 = JSON requests, fd 4 = JSON events. Needs Node 24:
//   node --test packages/core/runtime/tests/kernel_js.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const KERNEL = fileURLToPath(new URL("../kernel_js.mjs", import.meta.url));
const KERNEL_ARGS = ["--expose-internals", KERNEL]; // the command line PROTOCOL.md prescribes
const SUITE = { timeout: 15_000 }; // a hung kernel fails its suite instead of stalling the run

// A working directory with local modules, to check that require and import() resolve from it.
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-kernel-js-"));
fs.writeFileSync(path.join(workspace, "helper.cjs"), "module.exports = { answer: 42 };\n");
fs.writeFileSync(path.join(workspace, "helper.mjs"), 'export const greeting = "hello";\n');
after(() => fs.rmSync(workspace, { recursive: true, force: true }));

class Kernel {
  static async start() {
    const kernel = new Kernel();
    await kernel.ready;
    return kernel;
  }

  constructor() {
    this.process = spawn(process.execPath, KERNEL_ARGS, {
      cwd: workspace,
      stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"],
    });
    this.stdout = "";
    this.stderr = "";
    this.process.stdout.setEncoding("utf8").on("data", (chunk) => {
      this.stdout += chunk;
    });
    this.process.stderr.setEncoding("utf8").on("data", (chunk) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.process.on("exit", (code, signal) => resolve({ code, signal })));
    this.nextId = 1;
    this.pending = new Map(); // id -> { results, resolve }
    this.ready = new Promise((resolve, reject) => {
      this.exited.then(({ code }) => reject(new Error(`kernel exited (${code}) before ready: ${this.stderr}`)));
      readline.createInterface({ input: this.process.stdio[4] }).on("line", (line) => {
        const event = JSON.parse(line);
        if (event.type === "ready") resolve();
        else if (event.type === "result") this.pending.get(event.id).results.push(event.result);
        else if (event.type === "done") this.pending.get(event.id).resolve(event.error);
      });
    });
  }

  /** Sends a run request; resolves with its results, error and the output written meanwhile. */
  async run(code, language = "javascript") {
    const id = this.nextId++;
    const stdoutStart = this.stdout.length;
    const stderrStart = this.stderr.length;
    const results = [];
    const done = new Promise((resolve) => this.pending.set(id, { results, resolve }));
    this.process.stdio[3].write(`${JSON.stringify({ type: "run", id, code, language })}\n`);
    const error = await done;
    // Like the agent: read what is already in the output pipes before taking `done` as final.
    await new Promise((resolve) => setImmediate(resolve));
    return { results, error, stdout: this.stdout.slice(stdoutStart), stderr: this.stderr.slice(stderrStart) };
  }

  /** Runs `code` and returns the text of its main result, failing on an error. */
  async value(code, language) {
    const { results, error } = await this.run(code, language);
    assert.equal(error, null, `unexpected error: ${JSON.stringify(error)}`);
    const main = results.filter((result) => result.isMainResult);
    assert.ok(main.length <= 1);
    return main[0]?.text;
  }

  async waitForStdout(text) {
    while (!this.stdout.includes(text)) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Sends SIGINT and waits until the kernel has taken it (no longer pending at the OS level). */
  async interruptAndWait() {
    this.process.kill("SIGINT");
    const pending = () =>
      fs
        .readFileSync(`/proc/${this.process.pid}/status`, "utf8")
        .match(/^(?:Shd|Sig)Pnd:\s*(\w+)$/gm)
        .some((line) => !/:\s*0+$/.test(line));
    while (pending()) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  async stop() {
    this.process.stdio[3].end(); // closing the request pipe ends the kernel
    return this.exited;
  }
}

describe("notebook state", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("let, const, var, function, class and destructured bindings persist between cells", async () => {
    await kernel.run(
      "let a = 1; const b = 2; var c = 3; function add(x, y) { return x + y }\nclass Point { constructor(x) { this.x = x } }\nconst { d, e: [f, ...g] } = { d: 4, e: [5, 6, 7] }",
    );
    assert.equal(await kernel.value("[add(a, b), c, new Point(d).x, f, g]"), "[ 3, 3, 4, 5, [ 6, 7 ] ]");
    assert.equal(await kernel.value("a += 10; a"), "11");
  });

  test("re-running a cell that declares const, let and class does not fail", async () => {
    const cell =
      "const config = { n: (globalThis.runs = (globalThis.runs ?? 0) + 1) }\nlet counter\nclass Box { get n() { return config.n } }";
    for (let i = 0; i < 3; i++) assert.equal((await kernel.run(cell)).error, null);
    assert.equal(await kernel.value("[new Box().n, counter]"), "[ 3, undefined ]");
  });

  test("a declaration repeated inside one cell is still a syntax error", async () => {
    const { error } = await kernel.run("const twice = 1\nconst twice = 2");
    assert.equal(error.name, "SyntaxError");
    assert.match(error.value, /already been declared/);
  });
});

describe("results", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("the final expression is the main result, with json for plain data", async () => {
    const { results, error } = await kernel.run('const n = 20;\n({ total: n + 1, tags: ["a", null, true] })');
    assert.equal(error, null);
    assert.deepEqual(results, [
      {
        text: "{ total: 21, tags: [ 'a', null, true ] }",
        json: { total: 21, tags: ["a", null, true] },
        isMainResult: true,
      },
    ]);
  });

  test("values that JSON would not represent exactly get text only", async () => {
    for (const [code, text] of [
      ["new Map([[1, 2]])", "Map(1) { 1 => 2 }"],
      ["[1, NaN]", "[ 1, NaN ]"],
      ['"str"', "'str'"],
      ["({ f() {} })", "{ f: [Function: f] }"],
    ]) {
      const { results } = await kernel.run(code);
      assert.deepEqual(results, [{ text, isMainResult: true }], code);
    }
  });

  test("undefined, a declaration or a statement last gives no main result", async () => {
    for (const code of [
      "undefined",
      "void 0",
      "const last = 1",
      "if (true) { 5 }",
      "function g() {}",
      'console.log("x")',
    ]) {
      assert.deepEqual((await kernel.run(code)).results, [], code);
    }
  });

  test("a result bigger than the agent can forward keeps its text but loses its json", async () => {
    const { results, stderr } = await kernel.run('Array.from({ length: 200_000 }, (_, i) => ({ i, name: "row" }))');
    assert.equal(results.length, 1);
    assert.equal(results[0].json, undefined);
    assert.match(results[0].text, /^\[\n {2}\{ i: 0, name: 'row' \},/);
    assert.match(stderr, /^kiln: json output left out: \d+ bytes is too large\n$/);
  });

  test("display() emits non-main results in order before the main one", async () => {
    const { results } = await kernel.run('display({ a: 1 }); display("two"); 3');
    assert.deepEqual(results, [
      { text: "{ a: 1 }", json: { a: 1 }, isMainResult: false },
      { text: "'two'", isMainResult: false },
      { text: "3", isMainResult: true },
    ]);
  });

  test("a Promise value is shown as a Promise unless awaited", async () => {
    assert.equal(await kernel.value("Promise.resolve(7)"), "Promise { 7 }");
    assert.equal(await kernel.value("await Promise.resolve(7)"), "7");
  });
});

describe("top-level await", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("variables assigned from an await persist", async () => {
    const { results, error } = await kernel.run(
      "const slow = await new Promise((resolve) => setTimeout(() => resolve(41), 20))\nlet other = slow + 1",
    );
    assert.equal(error, null);
    assert.deepEqual(results, []);
    assert.equal(await kernel.value("[slow, other]"), "[ 41, 42 ]");
  });

  test("the final awaited expression is the main result", async () => {
    assert.equal(await kernel.value("await null\nconst base = 2\nawait Promise.resolve(base * 21)"), "42");
  });

  test("functions and classes declared in an async cell are global", async () => {
    await kernel.run("await 0\nfunction twice(x) { return 2 * x }\nclass Later {}");
    assert.equal(await kernel.value("[twice(4), typeof Later]"), "[ 8, 'function' ]");
  });
});

describe("output", SUITE, () => {
  test("console output comes in order, before done", async () => {
    const kernel = await Kernel.start();
    const { stdout, stderr } = await kernel.run(
      'for (let i = 0; i < 5; i++) console.log("line", i)\nconsole.error("problem")\nprocess.stdout.write("no newline")',
    );
    assert.equal(stdout, "line 0\nline 1\nline 2\nline 3\nline 4\nno newline");
    assert.equal(stderr, "problem\n");
    await kernel.stop();
  });

  test("done waits until output larger than the pipe has been written", async () => {
    const kernel = await Kernel.start();
    const size = 4 << 20;
    kernel.process.stdout.pause(); // the reader falls behind: Node has to queue the rest of the write
    let done = false;
    const running = kernel.run(`process.stdout.write("x".repeat(${size}))`).then((outcome) => {
      done = true;
      return outcome;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(done, false, "done must not overtake output still queued in the kernel");
    kernel.process.stdout.resume();
    await running;
    while (kernel.stdout.length < size) await new Promise((resolve) => setTimeout(resolve, 5)); // all of it is in the pipe
    assert.equal(kernel.stdout, "x".repeat(size));
    await kernel.stop();
  });
});

describe("modules", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("require and import() work for built-ins and resolve from the working directory", async () => {
    assert.equal(await kernel.value('require("node:path").join("a", "b")'), "'a/b'");
    assert.equal(await kernel.value('require("./helper.cjs").answer'), "42");
    assert.equal(await kernel.value('const os = await import("node:os")\ntypeof os.cpus'), "'function'");
    assert.equal(await kernel.value('(await import("./helper.mjs")).greeting'), "'hello'");
  });

  test("static imports become persistent bindings", async () => {
    await kernel.run(
      'import path, { sep as separator } from "node:path"\nimport * as helper from "./helper.mjs"\nimport "node:fs"',
    );
    assert.equal(await kernel.value('[path.basename("/x/y"), separator, helper.greeting]'), "[ 'y', '/', 'hello' ]");
  });
});

describe("TypeScript", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("interfaces, annotations, generics and type-only imports are stripped", async () => {
    const cell = [
      'import type { Missing } from "./does-not-exist"',
      "interface Named { name: string }",
      "type Id = number",
      "function first<T extends Named>(items: T[]): T | undefined { return items[0] }",
      'const people: Named[] = [{ name: "Ada" }]',
      "let id: Id = 7 as Id",
      "first<Named>(people)!.name + id",
    ].join("\n");
    assert.equal(await kernel.value(cell, "typescript"), "'Ada7'");
    assert.equal(await kernel.value("const again: number = id + 1; again", "typescript"), "8");
  });

  test("enums and parameter properties work, and their stack lines match the source", async () => {
    const cell = [
      "enum Color { Red, Green = 5 }",
      "class Holder {",
      "  constructor(private readonly value: Color) {}",
      "  get(): Color { return this.value }",
      "}",
      "function fail(): never {",
      '  throw new Error("typed")',
      "}",
    ].join("\n");
    assert.equal((await kernel.run(cell, "typescript")).error, null);
    assert.equal(await kernel.value("new Holder(Color.Green).get()", "typescript"), "5");
    const { error } = await kernel.run("fail()", "typescript");
    assert.match(error.traceback, /at fail \(cell-\d+\.ts:7:9\)/);
  });
});

describe("errors", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  test("a thrown error has its name, message and a traceback with the cell lines only", async () => {
    const { error } = await kernel.run('// a comment\nfunction fail() {\n  throw new RangeError("nope")\n}\nfail()');
    assert.equal(error.name, "RangeError");
    assert.equal(error.value, "nope");
    assert.match(error.traceback, /^RangeError: nope\n {4}at fail \(cell-\d+\.js:3:9\)\n {4}at cell-\d+\.js:5:1$/);
  });

  test("an error after an await points at the cell line", async () => {
    const { error } = await kernel.run('await null\n\nthrow new TypeError("late")');
    assert.equal(error.name, "TypeError");
    assert.match(error.traceback, /^TypeError: late\n {4}at cell-\d+\.js:3:7$/);
  });

  test("a huge error message is truncated", async () => {
    const { error } = await kernel.run('throw new Error("e".repeat(100_000))');
    assert.equal(error.value, `${"e".repeat(16 << 10)}\n[truncated]`);
    assert.ok(error.traceback.length < (32 << 10) + 20);
    assert.match(error.traceback, /^Error: eee/);
  });

  test("a thrown non-error is reported too", async () => {
    assert.deepEqual((await kernel.run('throw "plain"')).error, {
      name: "Error",
      value: "plain",
      traceback: "'plain'",
    });
  });

  test("a syntax error is reported at its line and nothing in the cell runs", async () => {
    const { error } = await kernel.run("globalThis.ran = true\nlet broken = = 2");
    assert.equal(error.name, "SyntaxError");
    assert.match(error.traceback, /^cell-\d+\.js:2\nlet broken = = 2\n {13}\^\n\nSyntaxError: Unexpected token$/);
    assert.equal(await kernel.value("typeof ran"), "'undefined'");
  });

  test("TypeScript and V8 syntax errors are syntax errors too", async () => {
    const typescript = (await kernel.run("let x: = 1", "typescript")).error;
    assert.equal(typescript.name, "SyntaxError");
    assert.match(typescript.traceback, /^cell-\d+\.ts:1\n/);
    const v8 = (await kernel.run("export const y = 1")).error;
    assert.equal(v8.name, "SyntaxError");
    assert.doesNotMatch(v8.traceback, /\bat /);
  });

  test("errors from timers and unhandled rejections go to stderr and the kernel lives on", async () => {
    const { error } = await kernel.run(
      'setTimeout(() => { throw new Error("from a timer") }, 10)\nPromise.reject(new Error("never handled"));\n(async () => { await null; throw new Error("async later") })()',
    );
    assert.equal(error, null);
    const { results } = await kernel.run('await new Promise((resolve) => setTimeout(resolve, 50)); "alive"');
    assert.deepEqual(results, [{ text: "'alive'", isMainResult: true }]);
    assert.match(kernel.stderr, /Uncaught Error: from a timer\n {4}at Timeout\._onTimeout \(cell-\d+\.js:1:26\)\n/);
    assert.match(kernel.stderr, /Uncaught Error: never handled\n/);
    assert.match(kernel.stderr, /Uncaught Error: async later\n/);
    assert.doesNotMatch(kernel.stderr, /kernel_js\.mjs|node:/);
  });
});

// Node's vm swaps SIGINT handlers around the synchronous part of a cell, and a signal landing in
// that swap (microseconds as the part starts or ends) is lost or fatal. So each test signals when
// the kernel is surely inside the synchronous part (it has printed from it), or surely past it.
describe("SIGINT", SUITE, () => {
  let kernel;
  before(async () => {
    kernel = await Kernel.start();
  });
  after(() => kernel.stop());

  const interrupted = {
    name: "Interrupted",
    value: "Execution interrupted",
    traceback: "Interrupted: Execution interrupted",
  };

  test("interrupts a synchronous infinite loop and keeps the state", async () => {
    await kernel.run('const kept = "still here"; let spins = 0');
    const running = kernel.run('console.log("spinning")\nwhile (true) { spins++ }');
    await kernel.waitForStdout("spinning");
    kernel.process.kill("SIGINT");
    assert.deepEqual((await running).error, interrupted);
    assert.equal(await kernel.value("[kept, spins > 0]"), "[ 'still here', true ]");
  });

  test("interrupts a pending top-level await and keeps the state", async () => {
    const running = kernel.run(
      'let before = 1\nsetTimeout(() => console.log("waiting"))\nawait new Promise(() => {})\nlet after = 2',
    );
    await kernel.waitForStdout("waiting");
    kernel.process.kill("SIGINT");
    assert.deepEqual((await running).error, interrupted);
    assert.equal(await kernel.value("[kept, before, after]"), "[ 'still here', 1, undefined ]");
  });

  test("is ignored between cells", async () => {
    await kernel.interruptAndWait();
    assert.equal(await kernel.value("kept"), "'still here'");
    assert.equal(kernel.process.exitCode, null);
  });
});

describe("process", SUITE, () => {
  test("malformed requests are reported on stderr and ignored", async () => {
    const kernel = await Kernel.start();
    kernel.process.stdio[3].write('not json\n{"type":"unknown"}\n');
    assert.equal(await kernel.value("1 + 1"), "2");
    assert.match(
      kernel.stderr,
      /ignoring a malformed request: not json\n.*ignoring a request of unknown type "unknown"\n/,
    );
    assert.deepEqual(await kernel.stop(), { code: 0, signal: null });
  });

  test("process.exit() from a cell ends the kernel", async () => {
    const kernel = await Kernel.start();
    kernel.process.stdio[3].write(
      `${JSON.stringify({ type: "run", id: 1, code: "process.exit(3)", language: "javascript" })}\n`,
    );
    assert.deepEqual(await kernel.exited, { code: 3, signal: null });
  });

  test("refuses to start without --expose-internals", async () => {
    const child = spawn(process.execPath, [KERNEL], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise((resolve) => child.on("exit", resolve));
    assert.equal(code, 2);
    assert.match(stderr, /--expose-internals/);
  });
});
