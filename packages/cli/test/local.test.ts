// Every command through the kiln binary in local mode (this machine's Docker engine). One sandbox
// serves the whole file: the machine has 2 cores.
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandResult, Execution, SandboxInfo, SnapshotInfo, VolumeInfo } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, baseEnv, expectOneLineError, kiln, kilnJson } from "./helpers.ts";
import { LABEL_FLAGS, TEST_LABELS } from "./labels.ts";

const suffix = `${process.pid}-${Date.now().toString(36)}`;
const name = `cli-test-${suffix}`;
const mounted = `cli-test-mounted-${suffix}`;
let info: SandboxInfo;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "kiln-cli-test-"));
  await kilnJson(["volume", "create", mounted]);
  info = await kilnJson<SandboxInfo>([
    ...["create", "--name", name, ...LABEL_FLAGS, "--label", "purpose=local", "--memory", "512"],
    ...["--env", "STAGE=test", "--volume", `${mounted}:/data`, "--auto-stop", "30m"],
  ]);
});

afterAll(async () => {
  if (info) await kiln(["rm", info.id]);
  await kiln(["volume", "rm", mounted]);
});

describe("sandbox lifecycle", () => {
  it("create prints the SandboxInfo with --json, and its id otherwise", async () => {
    expect(info).toMatchObject({
      name,
      state: "running",
      labels: { ...TEST_LABELS, purpose: "local" },
      language: "python",
      network: "none",
      resources: { memoryMb: 512 },
    });
    expect(info.id).toMatch(/^[0-9a-f]{12,64}$/);
  });

  it("ls lists it, filters by label, and prints ids with -q", async () => {
    const { sandboxes } = await kilnJson<{ sandboxes: SandboxInfo[] }>([
      "ls",
      "--label",
      "purpose=local",
      ...LABEL_FLAGS,
    ]);
    expect(sandboxes.map((s) => s.id)).toEqual([info.id]);
    const none = await kilnJson<{ sandboxes: SandboxInfo[] }>(["ls", "--label", `purpose=none-${suffix}`]);
    expect(none.sandboxes).toEqual([]);
    const quiet = await kiln(["ls", "-q", "--label", "purpose=local", ...LABEL_FLAGS]);
    expect(quiet.stdout.trim()).toBe(info.id);
    const table = await kiln(["ls", "--label", "purpose=local", ...LABEL_FLAGS]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATE\s+IMAGE\s+CREATED\s+LABELS/);
    expect(table.stdout).toContain(info.id.slice(0, 12));
    expect(table.stdout).not.toContain("\u001b["); // no colour off a terminal
  });

  it("info by name and by id", async () => {
    expect(await kilnJson<SandboxInfo>(["info", name])).toMatchObject({ id: info.id, state: "running" });
    const text = await kiln(["info", info.id.slice(0, 12)]); // the short id ls prints
    expect(text.stdout).toMatch(new RegExp(`name:\\s+${name}`));
  });
});

describe("exec", () => {
  it("passes the command's exit code through, output on the right streams", async () => {
    const run = await kiln(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(run).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("--json prints the CommandResult and still exits with its code", async () => {
    const run = await kiln(["exec", "--json", name, "--", "sh", "-c", "printf hi; exit 5"]);
    expect(run.code).toBe(5);
    const result = JSON.parse(run.stdout) as CommandResult;
    expect(result).toMatchObject({ exitCode: 5, stdout: "hi", status: "error", truncated: false });
  });

  it("streams output as it arrives", async () => {
    const chunks: { chunk: string; atMs: number }[] = [];
    const run = await kiln(["exec", name, "--", "sh", "-c", "echo first; sleep 2; echo second"], {
      onStdout: (chunk, atMs) => chunks.push({ chunk, atMs }),
    });
    expect(run.code).toBe(0);
    const first = chunks.find((c) => c.chunk.includes("first"));
    const second = chunks.find((c) => c.chunk.includes("second"));
    expect(first && second).toBeTruthy();
    expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThan(1_500);
  });

  it("--timeout exits 124, a killed command 137", async () => {
    const timeout = await kiln(["exec", "--timeout", "1s", name, "--", "sleep", "20"]);
    expectOneLineError(timeout, 124, /longer than 1s/);
    const killed = await kiln(["exec", name, "--", "sh", "-c", "kill -9 $$"]);
    expect(killed.code).toBe(137);
  });

  it("Ctrl-C stops the command in the sandbox and exits 130", async () => {
    const run = await kiln(["exec", name, "--", "sh", "-c", "echo started; exec sleep 41"], {
      signalOnOutput: "SIGINT",
    });
    expectOneLineError(run, 130, /interrupted/);
    const left = await kiln(["exec", name, "--", "sh", "-c", "ps -eo args | grep -c '^sleep 41' || true"]);
    expect(left.stdout.trim()).toBe("0");
  });

  it("a reader that goes away (| head) stops the command: exit 141, no stack trace", async () => {
    const run = await kiln(["exec", name, "--", "sh", "-c", "while true; do echo y; done"], { closeOnOutput: true });
    expect(run.code).toBe(141);
    expect(run.stderr).toBe("");
    const left = await kiln(["exec", name, "--", "sh", "-c", "ps -eo args | grep -c '^sh -c while' || true"]);
    expect(left.stdout.trim()).toBe("0");
  });

  it("-i forwards stdin; without it the command reads nothing", async () => {
    const piped = await kiln(["exec", "-i", name, "--", "wc", "-c"], { input: "hello kiln\n" });
    expect(piped).toMatchObject({ code: 0 });
    expect(piped.stdout.trim()).toBe("11");
    const closed = await kiln(["exec", name, "--", "wc", "-c"], { input: "ignored" });
    expect(closed.stdout.trim()).toBe("0");
  });

  it("create's --env and --volume reach the sandbox", async () => {
    const run = await kiln([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      'echo "$STAGE" > /data/stage && cat /data/stage && mountpoint -q /data && echo mounted',
    ]);
    expect(run).toMatchObject({ code: 0, stdout: "test\nmounted\n" });
  });

  it("--cwd and --env", async () => {
    const run = await kiln([
      "exec",
      "-w",
      "/tmp",
      "-e",
      "GREETING=hi there",
      name,
      "--",
      "sh",
      "-c",
      'pwd; echo "$GREETING"',
    ]);
    expect(run.stdout).toBe("/tmp\nhi there\n");
  });
});

describe("run", () => {
  it("prints output and results, saves a chart beside the file and names it on stderr", async () => {
    const file = join(work, "chart.py");
    await writeFile(
      file,
      "import matplotlib.pyplot as plt\nprint('plotting')\nplt.plot([1, 4, 9])\nplt.show()\n6 * 7\n",
    );
    const run = await kiln(["run", name, file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("plotting\n42\n");
    const png = join(work, "chart-1.png");
    expect(run.stderr).toContain(png);
    expect((await readFile(png)).subarray(1, 4).toString()).toBe("PNG");
  });

  it("reads - from stdin, --out DIR, --json prints the Execution", async () => {
    const out = join(work, "charts");
    await mkdir(out);
    const run = await kiln(["run", name, "-", "--out", out, "--json"], {
      input: "import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4]); plt.show()\n",
    });
    expect(run.code, run.stderr).toBe(0);
    const execution = JSON.parse(run.stdout) as Execution;
    expect(execution.status).toBe("ok");
    expect(execution.results.some((r) => r.png)).toBe(true);
    expect((await stat(join(out, "kiln-1.png"))).size).toBeGreaterThan(1000);
  });

  it("takes the language from the extension", async () => {
    const file = join(work, "hello.ts");
    await writeFile(file, "const n: number = 21;\nconsole.log(n * 2);\n");
    const run = await kiln(["run", name, file]);
    expect(run).toMatchObject({ code: 0, stdout: "42\n" });
  });

  it("exits 1 when the code raises, with the traceback on stderr", async () => {
    const run = await kiln(["run", name, "-"], { input: "1 / 0\n" });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("ZeroDivisionError");
    expect(run.stderr).toMatch(/^kiln: the code raised ZeroDivisionError$/m);
  });
});

describe("cp", () => {
  it("copies a directory in and out as docker cp does", async () => {
    const src = join(work, "project");
    await mkdir(join(src, "sub"), { recursive: true });
    await writeFile(join(src, "a.txt"), "alpha\n");
    await writeFile(join(src, "sub", "b.bin"), Buffer.from([0, 1, 2, 255]));
    await chmod(join(src, "a.txt"), 0o640);

    // Into an existing directory: lands inside it under its base name.
    const up = await kilnJson<{ files: number; bytes: number }>(["cp", src, `${name}:/workspace`]);
    expect(up).toMatchObject({ files: 2, bytes: 10 });
    const listing = await kiln([
      "exec",
      name,
      "--",
      "sh",
      "-c",
      "cd /workspace/project && find . -type f | sort && cat a.txt",
    ]);
    expect(listing.stdout).toBe("./a.txt\n./sub/b.bin\nalpha\n");

    // To a new name: the copy is that name; SRC/. copies the contents.
    expect((await kiln(["cp", src, `${name}:copy`])).code).toBe(0);
    expect((await kiln(["cp", `${src}/.`, `${name}:/workspace/copy`])).code).toBe(0);
    const copy = await kiln(["exec", name, "--", "sh", "-c", "cd /workspace/copy && find . -type f | sort"]);
    expect(copy.stdout).toBe("./a.txt\n./sub/b.bin\n");

    // And back out: into an existing local directory, and as a new name.
    const back = join(work, "back");
    await mkdir(back);
    expect((await kiln(["cp", `${name}:/workspace/project`, back])).code).toBe(0);
    expect(await readFile(join(back, "project", "sub", "b.bin"))).toEqual(Buffer.from([0, 1, 2, 255]));
    expect((await kiln(["cp", `${name}:/workspace/project/a.txt`, join(work, "renamed.txt")])).code).toBe(0);
    expect(await readFile(join(work, "renamed.txt"), "utf8")).toBe("alpha\n");
  });

  it("refuses two local paths (2), a missing source (1)", async () => {
    expectOneLineError(await kiln(["cp", "a", "b"]), 2, /sandbox path/);
    expectOneLineError(await kiln(["cp", join(work, "missing"), `${name}:/workspace`]), 1, /no such file/);
    expectOneLineError(await kiln(["cp", `${name}:/nope`, work]), 1, /no such file/);
  });
});

describe("snapshots and volumes", () => {
  it("snapshot create, ls, rm", async () => {
    const snap = `cli-test-${suffix}`;
    const created = await kilnJson<SnapshotInfo>(["snapshot", "create", name, snap]);
    expect(created.name).toBe(snap);
    const { snapshots } = await kilnJson<{ snapshots: SnapshotInfo[] }>(["snapshot", "ls"]);
    expect(snapshots.map((s) => s.name)).toContain(snap);
    expect((await kiln(["snapshot", "rm", snap])).stdout.trim()).toBe(snap);
    const after = await kilnJson<{ snapshots: SnapshotInfo[] }>(["snapshot", "ls"]);
    expect(after.snapshots.map((s) => s.name)).not.toContain(snap);
    expectOneLineError(await kiln(["snapshot", "rm", snap]), 1, /No snapshot/);
  });

  it("volume create, ls, rm", async () => {
    const vol = `cli-test-${suffix}`;
    expect(await kilnJson<VolumeInfo>(["volume", "create", vol])).toMatchObject({ name: vol });
    const { volumes } = await kilnJson<{ volumes: VolumeInfo[] }>(["volume", "ls"]);
    expect(volumes.map((v) => v.name)).toContain(vol);
    expect(await kilnJson(["volume", "rm", vol])).toEqual({ deleted: [vol] });
    expectOneLineError(await kiln(["volume", "rm", vol]), 1, /No volume/);
  });
});

describe("stop, start, doctor", () => {
  it("stop and start print the SandboxInfo", async () => {
    expect(await kilnJson<SandboxInfo>(["stop", name])).toMatchObject({ id: info.id, state: "stopped" });
    expect(await kilnJson<SandboxInfo>(["start", name])).toMatchObject({ id: info.id, state: "running" });
    expect((await kiln(["exec", name, "--", "true"])).code).toBe(0);
  });

  it("doctor checks node, engine, image and disk", async () => {
    const report = await kilnJson<{ ok: boolean; mode: string; checks: { name: string; ok: boolean }[] }>(["doctor"]);
    expect(report).toMatchObject({ ok: true, mode: "local" });
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ["node", true],
      ["engine", true],
      ["runtime image", true],
      ["disk", true],
    ]);
  });

  it("doctor fails (1) with a fix when no engine answers", async () => {
    const run = await kiln(["doctor"], { env: { DOCKER_HOST: "unix:///nonexistent/docker.sock" } });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/✗ engine/);
    expect(run.stdout).toMatch(/fix: start Docker/);
    expect(run.stderr.trim()).toBe("kiln: 2 check(s) failed");
  });
});

describe("usage errors and failures", () => {
  it("an unknown sandbox is a one-line failure (1)", async () => {
    expectOneLineError(await kiln(["info", `no-such-${suffix}`]), 1, /No sandbox/);
    expectOneLineError(await kiln(["exec", `no-such-${suffix}`, "--", "true"]), 1, /No sandbox/);
  });

  it("bad flags, commands and values are usage errors (2)", async () => {
    expectOneLineError(await kiln(["ls", "--bogus"]), 2, /unknown option/);
    expectOneLineError(await kiln(["bogus"]), 2, /unknown command/);
    expectOneLineError(await kiln(["exec", "--timeout", "soon", name, "--", "true"]), 2, /not a duration/);
    expectOneLineError(await kiln(["create", "--cpus", "many"]), 2, /positive number/);
    expectOneLineError(await kiln(["create", "--language", "cobol"]), 2, /Allowed choices/);
    expectOneLineError(await kiln(["create", "--label", "novalue"]), 2, /KEY=VALUE/);
    expectOneLineError(await kiln(["exec", name]), 2, /missing required argument/);
    const flagInCommand = await kiln(["exec", name, "ls", "-la"]);
    expectOneLineError(flagInCommand, 2, /unknown option/);
    expect(flagInCommand.stderr).toContain("after --");
    expectOneLineError(await kiln(["completion", "fish"]), 2, /bash or zsh/);
  });

  it("an unreadable file fails (1)", async () => {
    expectOneLineError(
      await kiln(["run", name, join(work, "missing.py")]),
      1,
      /cannot read .*missing\.py: no such file/,
    );
    // Root reads any file whatever its mode: a directory is what cannot be read here.
    expectOneLineError(await kiln(["run", name, work]), 1, /cannot read .*: EISDIR/);
  });

  it("a server URL without a key is a usage error (2)", async () => {
    expectOneLineError(await kiln(["ls", "--url", "http://127.0.0.1:9"]), 2, /needs an API key/);
    expectOneLineError(await kiln(["ls"], { env: { KILN_URL: "http://127.0.0.1:9" } }), 2, /needs an API key/);
    expectOneLineError(await kiln(["--url", "not a url", "--api-key", "k", "ls"]), 2, /not a URL/);
  });
});

describe("on a terminal", () => {
  // script(1) gives the child a pseudo-terminal, as a person's shell would.
  const inTerminal = (command: string, env: NodeJS.ProcessEnv = {}) =>
    execFileSync("script", ["-qec", command, "/dev/null"], {
      encoding: "utf8",
      env: baseEnv({ TERM: "xterm", ...env }),
    });
  const kilnCommand = (args: string[]) => [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(" ");

  it("colours a table on a TTY, never with NO_COLOR", () => {
    const args = ["ls", "--label", "purpose=local", ...LABEL_FLAGS];
    const coloured = inTerminal(kilnCommand(args), { NO_COLOR: "" }); // empty counts as unset (no-color.org)
    expect(coloured).toContain("\u001b[32mrunning");
    // The pseudo-terminal reports no size, so kiln assumes 80 columns.
    for (const line of coloured.split(/\r?\n/))
      expect(line.replace(/\u001b\[[0-9;]*m/g, "").length).toBeLessThanOrEqual(80);
    const plain = inTerminal(kilnCommand(args), { NO_COLOR: "1" });
    expect(plain).toContain("running");
    expect(plain).not.toContain("\u001b[32m");
  });

  it("kiln login asks for the URL and the key (hidden) on a terminal", async () => {
    // tmux: a real terminal whose screen the test reads and whose keys it types.
    const socket = `kiln-cli-test-${suffix}`;
    const configHome = join(work, "login-config");
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
    const screen = () => tmux("capture-pane", "-p", "-t", "login");
    const waitFor = async (pattern: RegExp) => {
      for (let i = 0; i < 150 && !pattern.test(screen()); i++) await new Promise((r) => setTimeout(r, 200));
      expect(screen()).toMatch(pattern);
    };
    const command = `${kilnCommand(["login", "--no-verify"])}; echo "exit=$?"; sleep 30`;
    tmux(
      "new-session",
      "-d",
      "-s",
      "login",
      "-x",
      "100",
      "-y",
      "30",
      "-e",
      `XDG_CONFIG_HOME=${configHome}`,
      "-e",
      "NO_COLOR=1",
      command,
    );
    try {
      await waitFor(/Kiln server URL/);
      tmux("send-keys", "-t", "login", "http://127.0.0.1:7420", "Enter");
      await waitFor(/API key/);
      tmux("send-keys", "-t", "login", "kiln_typed_secret", "Enter");
      await waitFor(/exit=\d+/);
      expect(screen()).toContain("exit=0");
      expect(screen()).not.toContain("kiln_typed_secret"); // masked while typed
      const saved = JSON.parse(await readFile(join(configHome, "kiln", "config.json"), "utf8"));
      expect(saved).toEqual({ url: "http://127.0.0.1:7420", apiKey: "kiln_typed_secret" });
    } finally {
      tmux("kill-server");
    }
  });

  it("shows progress for a large copy", async () => {
    const big = join(work, "big.bin");
    await writeFile(big, Buffer.alloc(9 * 1024 * 1024, 7));
    const screen = inTerminal(kilnCommand(["cp", big, `${name}:/tmp/big.bin`]));
    expect(screen).toMatch(/copied 1 file, 9\.0 MiB/);
    const size = await kiln(["exec", name, "--", "stat", "-c", "%s", "/tmp/big.bin"]);
    expect(size.stdout.trim()).toBe(String(9 * 1024 * 1024));
  });
});

describe("help and completion", () => {
  it("every command has --help with an example", async () => {
    const commands = [
      ...["serve", "create", "ls", "info", "start", "stop", "rm", "exec", "run", "cp", "doctor", "login", "logout"],
      ...["completion", "snapshot", "volume"],
      ...["snapshot create", "snapshot ls", "snapshot rm", "volume create", "volume ls", "volume rm"],
    ];
    // Three at a time: the machine has 2 cores.
    for (let i = 0; i < commands.length; i += 3) {
      const batch = commands.slice(i, i + 3);
      const runs = await Promise.all(batch.map((c) => kiln([...c.split(" "), "--help"])));
      for (const [j, run] of runs.entries()) {
        expect(run.code, batch[j]).toBe(0);
        expect(run.stdout, batch[j]).toMatch(/Examples?:\n {2}\$ .*kiln /);
      }
    }
  }, 180_000);

  it("completion scripts are valid shell and know the commands", async () => {
    const bash = await kiln(["completion", "bash"]);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain("complete -o default -F _kiln kiln");
    execFileSync("bash", ["-n"], { input: bash.stdout });
    // Drive the function as bash's completion would: COMP_WORDS for "kiln snapshot c".
    const completed = execFileSync(
      "bash",
      ["-c", `${bash.stdout}\nCOMP_WORDS=(kiln snapshot c); COMP_CWORD=2; _kiln; echo "\${COMPREPLY[*]}"`],
      { encoding: "utf8" },
    );
    expect(completed.trim()).toBe("create");
    const flags = execFileSync(
      "bash",
      ["-c", `${bash.stdout}\nCOMP_WORDS=(kiln exec --ti); COMP_CWORD=2; _kiln; echo "\${COMPREPLY[*]}"`],
      { encoding: "utf8" },
    );
    expect(flags.trim()).toBe("--timeout");
    const zsh = await kilnJson<{ shell: string; script: string }>(["completion", "zsh"]);
    expect(zsh.script).toMatch(/^#compdef kiln/);
    expect(zsh.script).toContain("'snapshot:");
  });
});
