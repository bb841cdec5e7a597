import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { AGENT_CALL_TIMEOUT_MS } from "../src/defaults.ts";
import { InvalidArgumentError, NotFoundError, type Pty, type Sandbox } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");
const kiln = testKiln();
let sb: Sandbox;
beforeAll(async () => {
  sb = await sandbox(kiln);
  await sb.files.write("/workspace/curses_size.py", readFileSync(join(FIXTURES, "curses_size.py")));
  await sb.files.write("/workspace/ws_echo.py", readFileSync(join(FIXTURES, "ws_echo.py")));
});

/** Everything a handle receives, as text, with a way to wait for a piece of it. */
function collect(pty: Pty) {
  const chunks: Buffer[] = [];
  pty.onData((bytes) => chunks.push(Buffer.from(bytes)));
  const text = () => Buffer.concat(chunks).toString("utf8");
  return {
    text,
    bytes: () => Buffer.concat(chunks),
    async until(needle: string | RegExp, timeoutMs = 15_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = text();
        if (typeof needle === "string" ? now.includes(needle) : needle.test(now)) return now;
        if (Date.now() > deadline)
          throw new Error(`never saw ${String(needle)}; got ${JSON.stringify(now.slice(-500))}`);
        await sleep(20);
      }
    },
  };
}

describe("pty", () => {
  it("runs a full-screen program that follows a resize", async () => {
    const pty = await sb.pty.create({ cols: 80, rows: 24, command: ["python3", "/workspace/curses_size.py"] });
    const out = collect(pty);
    await out.until("size=24x80");
    expect(out.text()).toContain("\x1b[?1049h"); // curses switched to the alternate screen
    await pty.resize(100, 30);
    await out.until("size=30x100");
    pty.write("q");
    expect(await pty.wait()).toEqual({ exitCode: 0 });
    pty.close();
  });

  it("gives a shell the terminal size, applies a resize before the bytes after it, and delivers Ctrl-C to the foreground job", async () => {
    const pty = await sb.pty.create({ cols: 80, rows: 24 });
    const out = collect(pty);
    pty.write("stty size; tty; echo uid-$(id -u)\n");
    await out.until("24 80");
    await out.until("/dev/pts/");
    await out.until("uid-1000"); // the sandbox user, like exec
    void pty.resize(132, 50); // not awaited: the write below must still see it
    pty.write("stty size\n");
    await out.until("50 132");
    pty.write("sleep 1000\n");
    await sleep(300);
    pty.write("\x03"); // SIGINT to the foreground job (sleep), not to the shell
    pty.write("echo sleep-ended-$?\n");
    await out.until("sleep-ended-130");
    pty.write("echo still-$((40+2))\n");
    await out.until("still-42");
    pty.write("exit 3\n");
    expect(await pty.wait()).toEqual({ exitCode: 3 });
  });

  it("a wait() left on a closed handle (a browser that went away) never cuts the sandbox's other calls", async () => {
    const pty = await sb.pty.create({ cols: 80, rows: 24 });
    const exited = pty.wait(); // what the server's WebSocket bridge does
    pty.close(); // the client went away; the shell runs on, and the wait now asks the agent
    // Longer than an agent call's deadline (15 s): a wait with that deadline closed the connection under it.
    const run = await sb.exec("sleep 17; echo still-here");
    expect(run).toMatchObject({ exitCode: 0, stdout: "still-here\n" });
    const again = await sb.pty.connect(pty.id);
    again.write("exit 4\n");
    expect(await exited).toEqual({ exitCode: 4 });
    again.close();
  }, 60_000);

  it("outlives the client that opened it: another client re-attaches and gets everything, in order", async () => {
    const first = testKiln();
    const mine = await first.get(sb.id);
    const pty = await mine.pty.create({
      cols: 80,
      rows: 24,
      command: "for i in $(seq 1 300); do echo line-$i; sleep 0.005; done; echo done; read x; echo got-$x",
    });
    const seen = collect(pty);
    await seen.until("line-20");
    await first.close(); // the client disconnects mid-stream
    await sleep(2_000); // the program goes on meanwhile
    const again = await sb.pty.connect(pty.id);
    const out = collect(again);
    await out.until("done");
    const lines = out
      .text()
      .split("\r\n")
      .filter((l) => l.startsWith("line-"));
    expect(lines).toEqual(Array.from({ length: 300 }, (_, i) => `line-${i + 1}`));
    again.write("hello\n");
    await out.until("got-hello");
    expect(await again.wait()).toEqual({ exitCode: 0 });
  });

  it("feeds a fast reader at once while a slow one lags, and the slow one skips to what the scrollback kept", async () => {
    const pty = await sb.pty.create({
      cols: 80,
      rows: 24,
      command: "sleep 0.3; head -c 3145728 /dev/zero | tr '\\0' x; echo; echo END; sleep 60",
    });
    const fast = collect(pty);
    const slowHandle = await sb.pty.connect(pty.id);
    const slow = collect(slowHandle);
    slowHandle.pause(); // a reader that cannot keep up
    const started = Date.now();
    await fast.until("END");
    const fastMs = Date.now() - started;
    expect(fast.bytes().toString("latin1").split("x").length - 1).toBe(3 * 1024 * 1024);
    slowHandle.resume();
    await slow.until("END");
    const slowXs = slow.bytes().toString("latin1").split("x").length - 1;
    // The agent keeps the last 1 MiB: the slow reader skipped the rest and never held anyone up.
    expect(slowXs).toBeGreaterThan(900_000);
    expect(slowXs).toBeLessThan(1024 * 1024);
    expect(fastMs).toBeLessThan(10_000);
    await pty.kill();
    expect((await pty.wait()).exitCode).toBe(137);
  });

  it("refuses bad arguments and unknown sessions", async () => {
    await expect(sb.pty.create({ cols: 0, rows: 24 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sb.pty.create({ cols: 80, rows: 24, cwd: "/nope" })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sb.pty.connect("pty_0000")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("processes", () => {
  it("start, list, logs (with follow), signal and wait", async () => {
    const { pid, tag } = await sb.processes.start("echo out; echo err >&2; sleep 0.5; echo later", { tag: "job" });
    expect(tag).toBe("job");
    const streamed: string[] = [];
    const logs = await sb.processes.logs(pid, { follow: true, onStdout: (c) => streamed.push(c) });
    expect(logs).toEqual({ stdout: "out\nlater\n", stderr: "err\n" });
    expect(streamed.join("")).toBe("out\nlater\n");
    expect(await sb.processes.wait(pid)).toEqual({ exitCode: 0 });
    const listed = (await sb.processes.list()).find((p) => p.pid === pid);
    expect(listed).toMatchObject({ pid, tag: "job", running: false, exitCode: 0 });

    const sleeper = await sb.processes.start(["sleep", "600"], { cwd: "/tmp" });
    expect((await sb.processes.list()).find((p) => p.pid === sleeper.pid)).toMatchObject({
      running: true,
      command: "sleep 600",
    });
    await sb.processes.signal(sleeper.pid);
    expect(await sb.processes.wait(sleeper.pid)).toEqual({ exitCode: 143 });
    await expect(sb.processes.wait(999_999)).rejects.toBeInstanceOf(NotFoundError);
    await expect(sb.processes.signal(sleeper.pid, "SIGNOPE")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("a follow, a wait and an attached terminal may stay quiet longer than the agent's call deadline", async () => {
    // They wait on programs, not on the agent: a process or a terminal may print nothing for any
    // time (a `kiln logs -f` on a quiet job, a terminal whose user reads). The agent connection's
    // idle deadline (AGENT_CALL_TIMEOUT_MS) used to apply to them and close the connection, every
    // other call on it failing too.
    const quietS = Math.ceil((AGENT_CALL_TIMEOUT_MS + 2_000) / 1000);
    const { pid } = await sb.processes.start(`sleep ${quietS}; echo late`);
    const pty = await sb.pty.create({ cols: 80, rows: 24, command: "read x; echo got-$x" });
    const seen = collect(pty);
    const followed = sb.processes.logs(pid, { follow: true });
    const waited = sb.processes.wait(pid);
    expect(await followed).toEqual({ stdout: "late\n", stderr: "" });
    expect(await waited).toEqual({ exitCode: 0 });
    pty.write("hello\n");
    await seen.until("got-hello");
    expect((await sb.exec("echo alive")).stdout).toBe("alive\n");
  });

  it("runs on after its client disconnects, as the sandbox user", async () => {
    const other = testKiln();
    const { pid } = await (await other.get(sb.id)).processes.start("id -u; sleep 600", { tag: "outlives" });
    await other.close();
    await sleep(300);
    expect((await sb.processes.list()).find((p) => p.pid === pid)).toMatchObject({ running: true });
    expect((await sb.processes.logs(pid)).stdout).toBe("1000\n");
    await sb.processes.signal(pid, "SIGKILL");
    expect(await sb.processes.wait(pid)).toEqual({ exitCode: 137 });
  });

  it("ends them cleanly on stop: SIGTERM first, SIGKILL for one that ignores it", async () => {
    const own = await sandbox(kiln);
    await own.processes.start(
      `python3 -c "import signal, time, pathlib
def bye(*_): pathlib.Path('/workspace/got-term').write_text('yes'); raise SystemExit(0)
signal.signal(signal.SIGTERM, bye)
pathlib.Path('/workspace/polite-ready').write_text('1')
time.sleep(600)"`,
    );
    const stubborn = await own.processes.start("trap '' TERM; while :; do sleep 0.1; done", { tag: "stubborn" });
    for (let i = 0; i < 50 && !(await own.files.exists("/workspace/polite-ready")); i++) await sleep(100);
    const started = Date.now();
    await own.stop();
    const stopMs = Date.now() - started;
    expect(stopMs).toBeLessThan(4_000);
    await own.start();
    expect(await own.files.readText("/workspace/got-term")).toBe("yes");
    expect((await own.processes.list()).find((p) => p.pid === stubborn.pid)).toBeUndefined();
    expect((await own.exec("ps -eo args | grep -c '[w]hile :'")).stdout.trim()).toBe("0");
  });
});

describe("previewUrl", () => {
  let web: Sandbox;
  beforeAll(async () => {
    web = await sandbox(kiln, { network: "none", autoStopMs: 4_000 });
    await web.files.write("/workspace/site/index.html", "<h1>hello from the sandbox</h1>");
    await web.files.write("/workspace/ws_echo.py", readFileSync(join(FIXTURES, "ws_echo.py")));
    await web.processes.start("python3 -m http.server 8000 --bind 127.0.0.1", { cwd: "/workspace/site" });
    await web.processes.start("python3 /workspace/ws_echo.py 8765");
    await web.exec(
      'for i in $(seq 100); do python3 -c \'import socket; socket.create_connection(("127.0.0.1", 8000)); socket.create_connection(("127.0.0.1", 8765))\' 2>/dev/null && exit 0; sleep 0.1; done; exit 1',
    );
  });
  afterAll(() => web?.delete().catch(() => {}));

  it("serves a sandbox without network through a local proxy, with the token then its cookie", async () => {
    const preview = await web.previewUrl(8000);
    expect(preview.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/preview\/[0-9a-f]+\/8000\/\?token=/);
    expect(Date.parse(preview.expiresAt) - Date.now()).toBeGreaterThan(3_500_000);
    const first = await fetch(preview.url);
    expect(first.status).toBe(200);
    expect(await first.text()).toContain("hello from the sandbox");
    const cookie = first.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^kiln_preview_token=[^;]+; Path=/preview/${web.id}/8000/; HttpOnly`));
    const base = preview.url.split("?")[0] as string;
    const withCookie = await fetch(`${base}index.html`, { headers: { cookie: cookie.split(";")[0] as string } });
    expect(withCookie.status).toBe(200);
    const withHeader = await fetch(base, { headers: { "x-kiln-preview-token": preview.token } });
    expect(withHeader.status).toBe(200);
    const missing = await fetch(`${base}missing.txt`, { headers: { "x-kiln-preview-token": preview.token } });
    expect(missing.status).toBe(404); // the sandbox's own answer, passed through
  });

  it("refuses a missing, forged, expired or other-port token with 401, never a redirect", async () => {
    const preview = await web.previewUrl(8000);
    const base = preview.url.split("?")[0] as string;
    const none = await fetch(base, { redirect: "manual" });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    const [payload, signature] = preview.token.split(".") as [string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ s: web.id, p: 8000, e: Date.now() + 1e9 })).toString(
      "base64url",
    );
    for (const token of [`${forgedPayload}.${signature}`, `${payload}.${signature.slice(0, -2)}AA`, "garbage"]) {
      const res = await fetch(`${base}?token=${token}`, { redirect: "manual" });
      expect(res.status).toBe(401);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    const otherPort = await web.previewUrl(8765);
    const res = await fetch(base, { headers: { "x-kiln-preview-token": otherPort.token } });
    expect(res.status).toBe(401);
    const short = await web.previewUrl(8000, { expiresInMs: 1_000 });
    expect((await fetch(short.url)).status).toBe(200);
    await sleep(1_200);
    expect((await fetch(short.url, { redirect: "manual" })).status).toBe(401);
    await expect(web.previewUrl(0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("relays WebSocket upgrades to a server in the sandbox", async () => {
    const preview = await web.previewUrl(8765);
    const wsUrl = `${preview.url.split("?")[0]?.replace("http://", "ws://")}`;
    const socket = new WebSocket(wsUrl, { headers: { "x-kiln-preview-token": preview.token } });
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    const big = Buffer.alloc(200_000, 7);
    const replies: Buffer[] = [];
    const got = new Promise<void>((resolve) => {
      socket.on("message", (data) => {
        replies.push(Buffer.from(data as Buffer));
        if (replies.length === 2) resolve();
      });
    });
    socket.send("ping over preview");
    socket.send(big);
    await got;
    expect(replies[0]?.toString()).toBe("ping over preview");
    expect(replies[1]?.equals(big)).toBe(true);
    socket.close();
    const refused = new WebSocket(wsUrl);
    const status = await new Promise<number | undefined>((resolve) => {
      refused.once("unexpected-response", (_req, res) => resolve(res.statusCode));
      refused.once("error", () => resolve(undefined));
    });
    expect(status).toBe(401);
  });

  it("counts a preview hit as activity for autoStopMs", async () => {
    const preview = await web.previewUrl(8000);
    for (let i = 0; i < 6; i++) {
      expect((await fetch(preview.url)).status).toBe(200);
      await sleep(1_000);
    }
    expect((await web.info()).state).toBe("running"); // 6 s > autoStopMs, kept alive by the hits
  });
});
