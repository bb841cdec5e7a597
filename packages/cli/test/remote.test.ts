// Every command through the kiln binary in remote mode: against a real `kiln serve` (a child
// process on a free port with a temp data dir), selected by KILN_URL/KILN_API_KEY, by flags, or
// by kiln login. One sandbox serves the whole file.
import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandResult, Execution, SandboxInfo, SnapshotInfo, VolumeInfo } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, kiln, kilnJson, type RunOptions, type ServeChild, startKilnServe } from "./helpers.ts";
import { LABEL_FLAGS, TEST_LABELS } from "./labels.ts";

const suffix = `${process.pid}-${Date.now().toString(36)}`;
const name = `cli-test-remote-${suffix}`;
let server: ServeChild | undefined;
let url: string;
let adminKey: string;
let dataDir: string;
let work: string;
let info: SandboxInfo;

/** kiln against the server, chosen by KILN_URL and KILN_API_KEY. */
const remote = (args: string[], options: RunOptions = {}) =>
  kiln(args, { ...options, env: { KILN_URL: url, KILN_API_KEY: adminKey, ...options.env } });
const remoteJson = <T>(args: string[], options: RunOptions = {}) =>
  kilnJson<T>(args, { ...options, env: { KILN_URL: url, KILN_API_KEY: adminKey, ...options.env } });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "kiln-cli-remote-"));
  dataDir = join(work, "data");
  server = await startKilnServe(dataDir);
  url = server.url;
  adminKey = server.adminKey;
  info = await remoteJson<SandboxInfo>(["create", "--name", name, ...LABEL_FLAGS, "--memory", "512"]);
});

afterAll(async () => {
  if (info) await remote(["rm", info.id]);
  await server?.stop();
});

describe("kiln serve", () => {
  it("prints its URL, and the admin key it made once on stderr (also in admin.key, mode 0600)", async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(adminKey).toMatch(/^kiln_/);
    expect(server?.stderr()).toContain(adminKey);
    expect((await stat(join(dataDir, "admin.key"))).mode & 0o777).toBe(0o600);
    const health = (await (await fetch(`${url}/healthz`)).json()) as { status: string };
    expect(health.status).toBe("ok");
  });
});

describe("sandboxes over the server", () => {
  it("create answers the route's SandboxInfo (language, network, resources)", () => {
    expect(info).toMatchObject({ name, state: "running", labels: TEST_LABELS, language: "python", network: "none" });
    expect(info).toHaveProperty("resources.memoryMb", 512);
  });

  it("ls, info; flags before the command select the server too", async () => {
    const { sandboxes } = await remoteJson<{ sandboxes: SandboxInfo[] }>(["ls", ...LABEL_FLAGS]);
    expect(sandboxes.map((s) => s.id)).toContain(info.id);
    const byFlags = await kiln(["--url", url, "--api-key", adminKey, "--json", "info", name]);
    expect(byFlags.code, byFlags.stderr).toBe(0);
    expect(JSON.parse(byFlags.stdout)).toMatchObject({ id: info.id });
  });

  it("exec streams, passes exit codes through, forwards stdin, times out with 124", async () => {
    const run = await remote(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(run).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });
    const json = await remote(["exec", "--json", name, "--", "sh", "-c", "printf hi; exit 4"]);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout) as CommandResult).toMatchObject({ exitCode: 4, stdout: "hi", status: "error" });
    const piped = await remote(["exec", "-i", name, "--", "wc", "-c"], { input: "hello\n" });
    expect(piped.stdout.trim()).toBe("6");
    expectOneLineError(await remote(["exec", "--timeout", "1s", name, "--", "sleep", "20"]), 124, /longer than 1s/);
  });

  it("run saves charts and exits 1 when the code raises", async () => {
    const file = join(work, "plot.py");
    await writeFile(file, "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2]); plt.show()\n'done'\n");
    const run = await remote(["run", name, file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("'done'\n");
    expect(run.stderr).toContain(join(work, "plot-1.png"));
    expect((await readFile(join(work, "plot-1.png"))).subarray(1, 4).toString()).toBe("PNG");
    const failed = await remote(["run", name, "-", "--json"], { input: "raise ValueError('no')\n" });
    expect(failed.code).toBe(1);
    expect((JSON.parse(failed.stdout) as Execution).error?.name).toBe("ValueError");
  });

  it("cp copies a directory both ways", async () => {
    const src = join(work, "tree");
    await mkdir(join(src, "inner"), { recursive: true });
    await writeFile(join(src, "inner", "x.txt"), "x\n");
    await writeFile(join(src, "y.txt"), "why\n");
    expect(await remoteJson(["cp", src, `${name}:/workspace`])).toMatchObject({ files: 2, bytes: 6 });
    const back = join(work, "back");
    expect((await remote(["cp", `${name}:/workspace/tree`, back])).code).toBe(0);
    expect(await readFile(join(back, "inner", "x.txt"), "utf8")).toBe("x\n");
  });

  it("snapshot and volume create, ls, rm", async () => {
    const snap = `cli-test-remote-${suffix}`;
    expect(await remoteJson<SnapshotInfo>(["snapshot", "create", name, snap])).toMatchObject({ name: snap });
    expect(
      (await remoteJson<{ snapshots: SnapshotInfo[] }>(["snapshot", "ls"])).snapshots.map((s) => s.name),
    ).toContain(snap);
    expect(await remoteJson(["snapshot", "rm", snap])).toEqual({ deleted: [snap] });
    const vol = `cli-test-remote-${suffix}`;
    expect(await remoteJson<VolumeInfo>(["volume", "create", vol])).toMatchObject({ name: vol });
    expect((await remoteJson<{ volumes: VolumeInfo[] }>(["volume", "ls"])).volumes.map((v) => v.name)).toContain(vol);
    expect(await remoteJson(["volume", "rm", vol])).toEqual({ deleted: [vol] });
  });

  it("stop and start", async () => {
    expect(await remoteJson<SandboxInfo>(["stop", name])).toMatchObject({ state: "stopped" });
    expect(await remoteJson<SandboxInfo>(["start", name])).toMatchObject({ state: "running" });
  });

  it("an unknown sandbox fails (1) in one line", async () => {
    expectOneLineError(await remote(["info", `no-such-${suffix}`]), 1, /no-such/);
  });
});

describe("doctor and keys", () => {
  it("doctor checks the server's /healthz and the key", async () => {
    const report = await remoteJson<{ ok: boolean; mode: string; checks: { name: string; ok: boolean }[] }>(["doctor"]);
    expect(report).toMatchObject({ ok: true, mode: "remote" });
    expect(report.checks.map((c) => c.name)).toEqual(["node", "server", "api key"]);
  });

  it("a wrong key: commands fail (1) with UNAUTHORIZED's message, doctor says how to fix it", async () => {
    const env = { KILN_API_KEY: "kiln_not_a_key" };
    const run = await remote(["ls"], { env });
    expectOneLineError(run, 1);
    const doctor = await remote(["doctor"], { env });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/✗ api key\s+refused/);
    expect(doctor.stdout).toMatch(/fix: .*kiln login/);
  });

  it("a server that does not answer: doctor fails (1)", async () => {
    const run = await kiln(["doctor", "--url", "http://127.0.0.1:9", "--api-key", "kiln_x"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/✗ server/);
  });
});

describe("kiln login", () => {
  it("checks the key, saves url and key (0600), and later commands use them; --local forces local", async () => {
    const configHome = join(work, "config");
    const env = { XDG_CONFIG_HOME: configHome };
    const refused = await kiln(["login", "--url", url, "--api-key", "kiln_wrong"], { env });
    expectOneLineError(refused, 1, /refused the key/);
    await expect(stat(join(configHome, "kiln", "config.json"))).rejects.toThrow();

    const login = await kiln(["login", "--url", url, "--api-key", "-", "--json"], { env, input: `${adminKey}\n` });
    expect(login.code, login.stderr).toBe(0);
    const file = join(configHome, "kiln", "config.json");
    expect(JSON.parse(login.stdout)).toEqual({ url, configFile: file });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ url, apiKey: adminKey });

    const listed = await kilnJson<{ sandboxes: SandboxInfo[] }>(["ls", ...LABEL_FLAGS], { env });
    expect(listed.sandboxes.map((s) => s.id)).toContain(info.id);
    const report = await kilnJson<{ mode: string }>(["doctor"], { env });
    expect(report.mode).toBe("remote");
    const local = await kilnJson<{ mode: string }>(["doctor", "--local"], { env });
    expect(local.mode).toBe("local");

    expect(await kilnJson(["logout"], { env })).toEqual({ loggedOut: true });
    expect((await kilnJson<{ mode: string }>(["doctor"], { env })).mode).toBe("local");
  });

  it("without a terminal, login needs --url (2)", async () => {
    expectOneLineError(await kiln(["login"]), 2, /needs --url/);
  });
});

describe("shutdown", () => {
  it("SIGTERM stops kiln serve with exit 0", async () => {
    // The sandbox outlives the server: remove it while the server still answers.
    await remote(["rm", info.id]);
    info = undefined as unknown as SandboxInfo;
    expect(await server?.stop()).toBe(0);
    expect(server?.stderr()).toContain("stopping");
  });
});
