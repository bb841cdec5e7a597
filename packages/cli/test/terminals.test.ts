// kiln shell, exec -t/-it/-d, ps, logs and preview through the kiln binary, in both modes: local
// (this machine's Docker engine) and remote (a real `kiln serve` child on a free port). The
// interactive ones run in tmux, a real terminal whose keys the test types and whose screen it reads.
import { execFileSync, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProcessInfo, SandboxInfo } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BIN,
  baseEnv,
  expectOneLineError,
  kiln,
  kilnJson,
  type RunOptions,
  type ServeChild,
  startKilnServe,
} from "./helpers.ts";
import { LABEL_FLAGS } from "./labels.ts";

const suffix = `${process.pid}-${Date.now().toString(36)}`;
let work: string;
let server: ServeChild | undefined;
let url = "";
let adminKey = "";
const sandboxes: { local?: SandboxInfo; remote?: SandboxInfo } = {};

type Mode = "local" | "remote";
const envFor = (mode: Mode): NodeJS.ProcessEnv => (mode === "remote" ? { KILN_URL: url, KILN_API_KEY: adminKey } : {});
const run = (mode: Mode, args: string[], options: RunOptions = {}) =>
  kiln(args, { ...options, env: { ...envFor(mode), ...options.env } });
const runJson = <T>(mode: Mode, args: string[], options: RunOptions = {}) =>
  kilnJson<T>(args, { ...options, env: { ...envFor(mode), ...options.env } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "kiln-cli-terminals-"));
  const dataDir = join(work, "data");
  server = await startKilnServe(dataDir);
  url = server.url;
  adminKey = server.adminKey;
  const create = ["create", ...LABEL_FLAGS, "--memory", "512"];
  [sandboxes.local, sandboxes.remote] = await Promise.all([
    runJson<SandboxInfo>("local", [...create, "--name", `cli-test-term-local-${suffix}`]),
    runJson<SandboxInfo>("remote", [...create, "--name", `cli-test-term-remote-${suffix}`]),
  ]);
});

afterAll(async () => {
  if (sandboxes.local) await run("local", ["rm", sandboxes.local.id]);
  if (sandboxes.remote) await run("remote", ["rm", sandboxes.remote.id]);
  await server?.stop();
});

/** A tmux server of its own running one command in a 100x30 window; its screen, its keys. */
class Terminal {
  readonly #socket: string;
  constructor(name: string, command: string, env: NodeJS.ProcessEnv) {
    this.#socket = `kiln-cli-test-${name}-${suffix}`;
    // The tmux server starts here, with the environment kiln is to see (no developer's KILN_URL).
    execFileSync("tmux", ["-L", this.#socket, "new-session", "-d", "-s", "t", "-x", "100", "-y", "30", command], {
      env: baseEnv({ TERM: "xterm-256color", ...env }),
    });
  }
  tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.#socket, ...args], { encoding: "utf8" });
  }
  /** "rows cols" of the pane, as stty size prints them. */
  size(): string {
    return this.tmux("display-message", "-p", "-t", "t", "#{pane_height} #{pane_width}").trim();
  }
  screen(): string {
    return this.tmux("capture-pane", "-p", "-J", "-t", "t");
  }
  type(...keys: string[]): void {
    this.tmux("send-keys", "-t", "t", ...keys);
  }
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && !pattern.test(this.screen())) await sleep(100);
    const screen = this.screen();
    expect(screen, `waiting for ${pattern}`).toMatch(pattern);
    return screen;
  }
  close(): void {
    let socketPath = "";
    try {
      socketPath = this.tmux("display-message", "-p", "#{socket_path}").trim();
      this.tmux("kill-server");
    } catch {
      // already gone
    }
    // tmux leaves the socket file behind here.
    if (socketPath) rmSync(socketPath, { force: true });
  }
}

const PROMPT = /kiln@sandbox:\/workspace\$/;

/** A shell line running kiln, then printing its exit code, then waiting so the screen stays. */
const kilnLine = (args: string[]) =>
  `${[process.execPath, BIN, ...args].map((a) => `'${a}'`).join(" ")}; echo "outer-exit=$?"; sleep 120`;

// Each child kiln takes a second or two to start on this shared 2-core machine.
describe.each(["local", "remote"] as const)("%s mode", { timeout: 180_000 }, (mode) => {
  const box = () => {
    const info = sandboxes[mode];
    if (!info) throw new Error("the sandbox was not created");
    return info.name ?? info.id;
  };

  it("kiln shell is an interactive terminal: runs lines, resizes, passes Ctrl-C in, exits with the shell's code", async () => {
    const term = new Terminal(`shell-${mode}`, kilnLine(["shell", box()]), envFor(mode));
    try {
      await term.waitFor(PROMPT);
      term.type("echo hello; python3 -c 'print(6*7)'", "Enter");
      const screen = await term.waitFor(/^42$/m);
      expect(screen).toMatch(/^hello$/m);
      // The terminal's size: the pane's at the start, then what tmux resizes it to.
      const first = term.size();
      expect(first).toMatch(/^(29|30) 100$/);
      term.type("stty size", "Enter");
      await term.waitFor(new RegExp(`^${first}$`, "m"));
      term.tmux("resize-window", "-t", "t", "-x", "120", "-y", "40");
      const resized = term.size();
      expect(resized).toMatch(/^(39|40) 120$/);
      await sleep(500);
      term.type("clear; stty size", "Enter");
      await term.waitFor(new RegExp(`^${resized}$`, "m"));
      // Ctrl-C reaches the program in the sandbox (and not kiln, which goes on).
      term.type("clear; sleep 100", "Enter");
      await sleep(500);
      term.type("C-c");
      term.type("echo after=$?", "Enter");
      await term.waitFor(/^after=130$/m, 10_000);
      term.type("exit 3", "Enter");
      await term.waitFor(/^outer-exit=3$/m);
    } finally {
      term.close();
    }
  });

  it("Ctrl-D ends kiln shell with 0 and gives the terminal back as it was", async () => {
    const line = `stty -g > ${work}/before-${mode}; ${kilnLine(["shell", box()]).replace("; sleep 120", `; stty -g > ${work}/after-${mode}; sleep 120`)}`;
    const term = new Terminal(`ctrld-${mode}`, line, envFor(mode));
    try {
      await term.waitFor(PROMPT);
      term.type("C-d");
      await term.waitFor(/^outer-exit=0$/m);
      await sleep(300);
      expect(await readFile(join(work, `after-${mode}`), "utf8")).toBe(
        await readFile(join(work, `before-${mode}`), "utf8"),
      );
    } finally {
      term.close();
    }
  });

  it("closing kiln shell's terminal (SIGHUP) ends the shell's program in the sandbox", async () => {
    const term = new Terminal(`hangup-${mode}`, kilnLine(["shell", box()]), envFor(mode));
    try {
      await term.waitFor(PROMPT);
      term.type("sleep 314", "Enter");
      const running = await run(mode, ["exec", box(), "--", "pgrep", "-f", "sleep 314"]);
      expect(running.code, running.stderr).toBe(0);
    } finally {
      term.close();
    }
    let left = 0;
    for (let i = 0; i < 30; i++) {
      left = (await run(mode, ["exec", box(), "--", "pgrep", "-f", "sleep 314"])).code ?? -1;
      if (left === 1) break;
      await sleep(300);
    }
    expect(left).toBe(1);
  });

  it("exec -it runs an interactive program on a terminal", async () => {
    const term = new Terminal(`execit-${mode}`, kilnLine(["exec", "-it", box(), "--", "python3", "-q"]), envFor(mode));
    try {
      await term.waitFor(/^>>>/m);
      term.type("print(6*7)", "Enter");
      await term.waitFor(/^42$/m);
      term.type("import sys; sys.exit(7)", "Enter");
      await term.waitFor(/^outer-exit=7$/m);
    } finally {
      term.close();
    }
  });

  it("exec -t allocates a terminal and passes the exit code through; without -t there is none", async () => {
    const tty = await run(mode, ["exec", "-t", box(), "--", "tty"]);
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
    const plain = await run(mode, ["exec", box(), "--", "tty"]);
    expect(plain.stdout.trim()).toBe("not a tty");
    const code = await run(mode, ["exec", "-t", box(), "--", "sh", "-c", "echo out; exit 5"]);
    expect(code.code).toBe(5);
    expect(code.stdout).toBe("out\r\n");
    const timeout = await run(mode, ["exec", "-t", "--timeout", "1s", box(), "--", "sleep", "30"]);
    expectOneLineError(timeout, 124, /longer than 1s/);
    // Without -i, Ctrl-C is kiln's: it kills the program in the sandbox and exits 130.
    const interrupted = await run(mode, ["exec", "-t", box(), "--", "sh", "-c", "echo ready; sleep 313"], {
      signalOnOutput: "SIGINT",
    });
    expect(interrupted.code).toBe(130);
    const left = await run(mode, ["exec", box(), "--", "pgrep", "-f", "sleep 313"]);
    expect(left.code, left.stdout).toBe(1);
    // stdout's reader goes away (| head -1): 141, and the program in the sandbox is stopped too.
    const piped = await run(
      mode,
      ["exec", "-t", box(), "--", "sh", "-c", "while :; do echo pipe-313; sleep 0.05; done"],
      {
        closeOnOutput: true,
      },
    );
    expect(piped.code).toBe(141);
    const loop = await run(mode, ["exec", box(), "--", "pgrep", "-f", "echo pipe-313"]);
    expect(loop.code, loop.stdout).toBe(1);
  });

  it("exec -d starts a background process; ps lists it; logs prints (and follows) its output", async () => {
    // --json before --: after it, every word is the command's.
    const start = await run(mode, [
      ...["exec", "-d", "--json", "--tag", `job-${mode}`, box(), "--"],
      ...[
        "sh",
        "-c",
        `echo one; while [ ! -e /tmp/go-${suffix} ]; do sleep 0.1; done; echo two >&2; echo three; exit 4`,
      ],
    ]);
    expect(start.code, start.stderr).toBe(0);
    const started = JSON.parse(start.stdout) as { pid: number; tag?: string };
    expect(started).toEqual({ pid: expect.any(Number), tag: `job-${mode}` });
    const { processes } = await runJson<{ processes: ProcessInfo[] }>(mode, ["ps", box()]);
    expect(processes.find((p) => p.pid === started.pid)).toMatchObject({ tag: `job-${mode}`, running: true });
    const table = await run(mode, ["ps", box()]);
    expect(table.stdout).toMatch(/^PID\s+TAG\s+STATUS\s+COMMAND/);
    expect(table.stdout).toMatch(new RegExp(`^${started.pid}\\s+job-${mode}\\s+running\\s+sh -c`, "m"));
    const quiet = await run(mode, ["ps", "-q", box()]);
    expect(quiet.stdout.split("\n")).toContain(String(started.pid));

    // -f by tag: what the process wrote so far at once, the rest as it comes, until it ends.
    let released = 0;
    const followed = await run(mode, ["logs", "-f", box(), `job-${mode}`], {
      onStdout: (chunk) => {
        if (released === 0 && chunk.includes("one")) {
          released = Date.now();
          void run(mode, ["exec", box(), "--", "touch", `/tmp/go-${suffix}`]);
        }
      },
    });
    expect(followed.code, followed.stderr).toBe(0);
    expect(released).toBeGreaterThan(0); // "one" arrived while the process still waited
    expect(followed.stdout).toBe("one\nthree\n");
    expect(followed.stderr).toBe("two\n");

    const logs = await runJson<{ stdout: string; stderr: string }>(mode, ["logs", box(), String(started.pid)]);
    expect(logs).toEqual({ stdout: "one\nthree\n", stderr: "two\n" });
    const lines = await run(mode, ["logs", "-f", "--json", box(), String(started.pid)]);
    const events = lines.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; data: string });
    expect(
      events
        .filter((e) => e.type === "stdout")
        .map((e) => e.data)
        .join(""),
    ).toBe("one\nthree\n");
    expect(
      events
        .filter((e) => e.type === "stderr")
        .map((e) => e.data)
        .join(""),
    ).toBe("two\n");
    const ended = await run(mode, ["ps", box()]);
    expect(ended.stdout).toMatch(new RegExp(`^${started.pid}\\s+job-${mode}\\s+exited \\(4\\)`, "m"));

    // Ctrl-C stops following (130, as tail -f), quietly; the process runs on.
    const ticker = await run(mode, [
      "exec",
      "-d",
      box(),
      "--",
      "sh",
      "-c",
      "while true; do echo tick; sleep 0.3; done",
    ]);
    const interrupted = await run(mode, ["logs", "-f", box(), ticker.stdout.trim()], { signalOnOutput: "SIGINT" });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stdout).toMatch(/^tick\n/);
    expect(interrupted.stderr).toBe("");
    const after = await runJson<{ processes: ProcessInfo[] }>(mode, ["ps", box()]);
    expect(after.processes.find((p) => p.pid === Number(ticker.stdout.trim()))?.running).toBe(true);

    // kill: SIGTERM unless -s; the process ends with 128 + its number.
    const killed = await run(mode, ["kill", "--json", "-s", "int", box(), ticker.stdout.trim()]);
    expect(killed.code, killed.stderr).toBe(0);
    expect(JSON.parse(killed.stdout)).toEqual({ pid: Number(ticker.stdout.trim()), signal: "SIGINT" });
    let state = "";
    for (let i = 0; i < 20 && !/exited/.test(state); i++) {
      state = (await run(mode, ["ps", box()])).stdout.split("\n").find((l) => l.startsWith(ticker.stdout.trim())) ?? "";
    }
    expect(state).toMatch(/exited \(130\)/);
    expectOneLineError(await run(mode, ["kill", box(), "4000000"]), 1, /No background process 4000000/);
    expectOneLineError(await run(mode, ["kill", "-s", "NOPE", box(), "1"]), 2, /not a signal/);
  });

  it("preview prints a URL that opens the sandbox's port (--json: url, token, expiresAt)", async () => {
    await run(mode, ["exec", "-d", "--tag", "web", box(), "--", "python3", "-m", "http.server", "8000"]);
    await run(mode, ["exec", box(), "--", "sh", "-c", "echo preview-ok > /workspace/hello.txt"]);
    const fetchUntil = async (address: string): Promise<Response> => {
      let response: Response | undefined;
      for (let i = 0; i < 50; i++) {
        response = await fetch(address).catch(() => undefined);
        if (response?.status === 200) return response;
        await sleep(200);
      }
      throw new Error(`${address} answered ${response?.status}`);
    };
    const hello = (base: string) => base.replace("/?token=", "/hello.txt?token=");
    if (mode === "remote") {
      const before = Date.now();
      const preview = await runJson<{ url: string; token: string; expiresAt: string }>(mode, [
        ...["preview", "--expires", "10m", box(), "8000"],
      ]);
      expect(preview.url.startsWith(`${url}/preview/`)).toBe(true);
      const life = Date.parse(preview.expiresAt) - before;
      expect(life).toBeGreaterThan(9 * 60_000);
      expect(life).toBeLessThan(11 * 60_000);
      expect(await (await fetchUntil(hello(preview.url))).text()).toBe("preview-ok\n");
      const plain = await run(mode, ["preview", box(), "8000"]);
      expect(plain.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/preview\/\S+\?token=\S+\n$/);
      return;
    }
    // Local: kiln itself serves the URL until Ctrl-C.
    const child = spawn(process.execPath, [BIN, "preview", box(), "8000"], {
      env: baseEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const address = await new Promise<string>((resolve) => {
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        stdout += c;
        if (stdout.includes("\n")) resolve(stdout.trim());
      });
    });
    try {
      expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/preview\//);
      expect(await (await fetchUntil(hello(address))).text()).toBe("preview-ok\n");
      expect(stderr).toMatch(/press Ctrl-C to stop/);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    // Once kiln is gone, so is the URL.
    await expect(fetch(hello(address))).rejects.toThrow();
  });

  it("hostile input: unknown sandbox or process, bad port or expiry, no terminal", async () => {
    const missing = `no-such-${suffix}`;
    const cases: [string[], number, RegExp][] = [
      [["ps", missing], 1, /No sandbox/],
      [["logs", missing, "1"], 1, /No sandbox/],
      [["preview", missing, "8000"], 1, /No sandbox/],
      [["exec", "-t", missing, "--", "true"], 1, /No sandbox/],
      [["exec", "-d", missing, "--", "true"], 1, /No sandbox/],
      [["logs", box(), "4000000"], 1, /No background process 4000000/],
      [["logs", box(), "no-such-tag"], 1, /no background process .*"no-such-tag"/],
      ...["0", "70000", "abc", "80.5", "1e3"].map((port): [string[], number, RegExp] => [
        ["preview", box(), port],
        2,
        /argument 'port'.*not a port/,
      ]),
      [["preview", "--expires", "soon", box(), "80"], 2, /not a duration/],
      [["preview", "--expires", "0s", box(), "80"], 2, /--expires/],
      [["preview", "--expires", "31d", box(), "80"], 2, /1s to 30d/],
      // stdin is a pipe here, not a terminal.
      [["shell", box()], 2, /needs a terminal.*kiln exec/],
      [["exec", "-it", box(), "--", "sh"], 2, /-it needs stdin to be a terminal/],
      [["exec", "-t", "--json", box(), "--", "true"], 2, /--json does not go with -t/],
      [["exec", "--tag", "x", box(), "--", "true"], 2, /--tag .* with -d/],
      [["exec", "-d", "-t", box(), "--", "true"], 2, /-t does not go with -d/],
    ];
    // Three at a time: the machine has 2 cores.
    for (let i = 0; i < cases.length; i += 3) {
      const batch = cases.slice(i, i + 3);
      const runs = await Promise.all(batch.map(([args]) => run(mode, args)));
      for (const [j, result] of runs.entries()) {
        const [args, code, pattern] = batch[j] as [string[], number, RegExp];
        expect(result.code, args.join(" ")).toBe(code);
        expectOneLineError(result, code, pattern);
      }
    }
  });

  it("kiln shell on an unknown sandbox fails with one line (1) and leaves the terminal as it was", async () => {
    const term = new Terminal(`missing-${mode}`, kilnLine(["shell", `no-such-${suffix}`]), envFor(mode));
    try {
      const screen = await term.waitFor(/^outer-exit=\d+$/m);
      expect(screen).toMatch(/^outer-exit=1$/m);
      expect(screen).toMatch(/^kiln: No sandbox with id or name "no-such-/m);
    } finally {
      term.close();
    }
  });
});

describe("help and completion", () => {
  it("the new commands have --help with examples and complete in bash and zsh", async () => {
    for (const command of ["shell", "ps", "logs", "kill", "preview"]) {
      const help = await kiln([command, "--help"]);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toMatch(/Examples?:\n {2}\$ kiln /);
    }
    const exec = await kiln(["exec", "--help"]);
    expect(exec.stdout).toMatch(/-t, --tty/);
    expect(exec.stdout).toMatch(/-d, --detach/);
    const bash = await kiln(["completion", "bash"]);
    for (const command of ["shell", "ps", "logs", "preview"])
      expect(bash.stdout).toMatch(new RegExp(`\\b${command}\\b`));
    expect(bash.stdout).toMatch(/exec\) words="[^"]*--tty[^"]*--detach/);
    expect(bash.stdout).toMatch(/logs\) words="[^"]*--follow/);
    expect(bash.stdout).toMatch(/preview\) words="[^"]*--expires/);
    const zsh = await kiln(["completion", "zsh"]);
    expect(zsh.stdout).toMatch(/'shell:Open an interactive shell/);
  });
});
