// Terminals over the PTY WebSocket, tickets, background processes and previews, through real
// HTTP and real WebSocket clients against the real engine.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { addOrgKey, sseEvents, testServer } from "./helpers.ts";

const t = await testServer();
const WS_ECHO = readFileSync(join(import.meta.dirname, "../../core/test/fixtures/ws_echo.py"));

/** A WebSocket client that records every frame: binary as text (terminal bytes), text as JSON. */
async function terminal(sandboxId: string, ptyId: string, auth: { key?: string; ticket?: string } = { key: t.key }) {
  const url = `${t.url.replace("http", "ws")}/v1/sandboxes/${sandboxId}/pty/${ptyId}${auth.ticket ? `?ticket=${auth.ticket}` : ""}`;
  const ws = new WebSocket(url, auth.key ? { headers: { authorization: `Bearer ${auth.key}` } } : {});
  const frames: ({ bytes: string } | { json: Record<string, unknown> })[] = [];
  let output = "";
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      const text = Buffer.from(data as Buffer).toString("latin1");
      output += text;
      frames.push({ bytes: text });
    } else frames.push({ json: JSON.parse(String(data)) });
  });
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once("error", reject);
  });
  return {
    ws,
    frames,
    closed,
    output: () => output,
    async until(needle: string, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(needle)) {
        if (Date.now() > deadline) throw new Error(`never saw ${needle}; got ${JSON.stringify(output.slice(-400))}`);
        await sleep(10);
      }
    },
  };
}

/** The status a refused WebSocket upgrade gets. */
async function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve) => {
    ws.once("unexpected-response", (_req, res) => resolve(res.statusCode));
    ws.once("open", () => {
      ws.close();
      resolve(101);
    });
    ws.once("error", () => resolve(undefined));
  });
}

let sandboxId: string;
beforeAll(async () => {
  sandboxId = (await t.create()).id as string;
});

describe("the PTY WebSocket", () => {
  it("replays the scrollback first, applies a resize before the bytes after it, and ends with an exit frame", async () => {
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, { body: { cols: 80, rows: 24 } });
    expect(created.status).toBe(201);
    const ptyId = created.body.ptyId as string;
    const first = await terminal(sandboxId, ptyId);
    first.ws.send(Buffer.from("echo scroll-$((40+2)); stty size\n"), { binary: true });
    await first.until("24 80");
    await first.until("scroll-42");
    first.ws.close();
    await first.closed;

    const second = await terminal(sandboxId, ptyId);
    await second.until("scroll-42"); // the scrollback, before anything new
    expect(second.frames[0]).toHaveProperty("bytes");
    second.ws.send(JSON.stringify({ type: "resize", cols: 132, rows: 50 }));
    second.ws.send(Buffer.from("stty size\n"), { binary: true }); // right after: must see the new size
    await second.until("50 132");
    second.ws.send(Buffer.from("exit 5\n"), { binary: true });
    expect(await second.closed).toBe(1000);
    expect(second.frames.at(-1)).toEqual({ json: { type: "exit", exitCode: 5 } });
    expect(second.frames.slice(0, -1).every((f) => "bytes" in f)).toBe(true);
  });

  it("Ctrl-C reaches the foreground program", async () => {
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, {
      body: {
        cols: 80,
        rows: 24,
        command: ["python3", "-c", "import time\nprint('ready', flush=True)\ntime.sleep(600)"],
      },
    });
    const term = await terminal(sandboxId, created.body.ptyId);
    await term.until("ready");
    term.ws.send(Buffer.from("\x03"), { binary: true });
    await term.until("KeyboardInterrupt");
    expect(await term.closed).toBe(1000);
    expect(term.frames.at(-1)).toEqual({ json: { type: "exit", exitCode: 130 } }); // Python's exit on an uncaught SIGINT
  });

  it("keeps a fast client fed while another reads slowly; the slow one catches up from the scrollback", async () => {
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, {
      body: { cols: 80, rows: 24, command: "sleep 1; head -c 1000000 /dev/zero | tr '\\0' y; echo; echo END; sleep 3" },
    });
    const ptyId = created.body.ptyId as string;
    const fast = await terminal(sandboxId, ptyId);
    const slow = await terminal(sandboxId, ptyId);
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause(); // reads nothing
    const started = Date.now();
    await fast.until("END");
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fast.output().split("y").length - 1).toBe(1_000_000);
    expect(slow.output().length).toBeLessThan(1_000_000);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await slow.until("END");
    expect(slow.output().split("y").length - 1).toBe(1_000_000); // under 1 MiB: nothing was lost
    expect(await fast.closed).toBe(1000);
    expect(await slow.closed).toBe(1000);
  });

  it("answers 401 without a key, 404 for an unknown terminal or another organisation's sandbox", async () => {
    const base = `${t.url.replace("http", "ws")}/v1/sandboxes/${sandboxId}/pty`;
    expect(await refusedStatus(`${base}/pty_0123456789abcdef`)).toBe(401);
    expect(await refusedStatus(`${base}/pty_0123456789abcdef`, { authorization: `Bearer ${t.key}` })).toBe(404);
    const other = await addOrgKey(t.dataDir, "oterm");
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, { body: { cols: 80, rows: 24 } });
    expect(await refusedStatus(`${base}/${created.body.ptyId}`, { authorization: `Bearer ${other}` })).toBe(404);
    const plain = await t.api("GET", `/v1/sandboxes/${sandboxId}/pty/${created.body.ptyId}`);
    expect(plain.status).toBe(400);
  });
});

describe("tickets", () => {
  it("open one browser WebSocket, once", async () => {
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, { body: { cols: 80, rows: 24 } });
    const issued = await t.api("POST", "/v1/tickets");
    expect(issued.status).toBe(201);
    expect(Date.parse(issued.body.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000);
    const term = await terminal(sandboxId, created.body.ptyId, { ticket: issued.body.ticket });
    term.ws.send(Buffer.from("echo via-$((1+1))-ticket\n"), { binary: true });
    await term.until("via-2-ticket");
    term.ws.close();
    const url = `${t.url.replace("http", "ws")}/v1/sandboxes/${sandboxId}/pty/${created.body.ptyId}`;
    expect(await refusedStatus(`${url}?ticket=${issued.body.ticket}`)).toBe(401); // used up
    expect(await refusedStatus(`${url}?ticket=kt_forged`)).toBe(401);
    // A ticket is not a key for plain requests.
    const again = (await t.api("POST", "/v1/tickets")).body.ticket;
    expect((await t.api("GET", `/v1/sandboxes/${sandboxId}?ticket=${again}`, { key: null })).status).toBe(401);
  });
});

describe("processes", () => {
  it("start, list, logs (JSON and SSE follow), signal", async () => {
    const started = await t.api("POST", `/v1/sandboxes/${sandboxId}/processes`, {
      body: { command: "echo one; sleep 0.5; echo two >&2; exit 3", tag: "job" },
    });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ tag: "job" });
    const pid = started.body.pid as number;
    const res = await fetch(`${t.url}/v1/sandboxes/${sandboxId}/processes/${pid}/logs?follow=true`, {
      headers: { authorization: `Bearer ${t.key}`, accept: "text/event-stream" },
    });
    const events = await sseEvents(res);
    expect(events[0]).toEqual({ type: "stdout", data: "one\n" });
    expect(events.at(-1)).toEqual({ type: "result", result: { stdout: "one\n", stderr: "two\n", exitCode: 3 } });
    const logs = await t.api("GET", `/v1/sandboxes/${sandboxId}/processes/${pid}/logs`);
    expect(logs.body).toEqual({ stdout: "one\n", stderr: "two\n" });
    const list = await t.api("GET", `/v1/sandboxes/${sandboxId}/processes`);
    expect(list.body.processes).toContainEqual({
      pid,
      tag: "job",
      command: "echo one; sleep 0.5; echo two >&2; exit 3",
      running: false,
      exitCode: 3,
    });

    const sleeper = (
      await t.api("POST", `/v1/sandboxes/${sandboxId}/processes`, { body: { command: ["sleep", "600"] } })
    ).body;
    const signalled = await t.api("POST", `/v1/sandboxes/${sandboxId}/processes/${sleeper.pid}/signal`, {
      body: { signal: "SIGKILL" },
    });
    expect(signalled.status).toBe(204);
    const waited = await t.api("GET", `/v1/sandboxes/${sandboxId}/processes/${sleeper.pid}/logs?follow=true`);
    expect(waited.body.exitCode).toBe(137);
    const noBody = await t.api("POST", `/v1/sandboxes/${sandboxId}/processes/${sleeper.pid}/signal`);
    expect(noBody.status).toBe(204);
    const missing = await t.api("GET", `/v1/sandboxes/${sandboxId}/processes/999999/logs`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("NOT_FOUND");
    const bad = await t.api("POST", `/v1/sandboxes/${sandboxId}/processes/${pid}/signal`, { body: { signal: "nope" } });
    expect(bad.status).toBe(400);
  });
});

describe("previews through the server", () => {
  let web: string;
  beforeAll(async () => {
    web = (await t.create({ network: "none" })).id as string;
    const put = await t.api("PUT", `/v1/sandboxes/${web}/files?path=/workspace/ws_echo.py`, { raw: WS_ECHO });
    expect(put.status).toBe(201);
    await t.api("PUT", `/v1/sandboxes/${web}/files?path=/workspace/site/index.html`, {
      raw: "<p>served from none</p>",
    });
    await t.api("POST", `/v1/sandboxes/${web}/processes`, {
      body: { command: "python3 -m http.server 8000 --bind 127.0.0.1", cwd: "/workspace/site" },
    });
    await t.api("POST", `/v1/sandboxes/${web}/processes`, { body: { command: "python3 /workspace/ws_echo.py 8765" } });
    const ready = await t.api("POST", `/v1/sandboxes/${web}/exec`, {
      body: {
        command:
          'for i in $(seq 100); do python3 -c \'import socket; socket.create_connection(("127.0.0.1", 8000)); socket.create_connection(("127.0.0.1", 8765))\' 2>/dev/null && exit 0; sleep 0.1; done; exit 1',
      },
    });
    expect(ready.body.exitCode).toBe(0);
  });

  it("serves HTTP from a sandbox with network none on the server's own address, token then cookie", async () => {
    const made = await t.api("POST", `/v1/sandboxes/${web}/ports/8000/preview`, { body: { expiresInMs: 600_000 } });
    expect(made.status).toBe(201);
    expect(made.body.url.startsWith(`${t.url}/preview/${web}/8000/?token=`)).toBe(true);
    expect(Math.abs(Date.parse(made.body.expiresAt) - Date.now() - 600_000)).toBeLessThan(5_000);
    const page = await fetch(made.body.url, { redirect: "manual" });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("served from none");
    const cookie = page.headers.get("set-cookie") as string;
    expect(cookie).toContain(`Path=/preview/${web}/8000/`);
    expect(cookie).toContain("HttpOnly");
    const base = `${t.url}/preview/${web}/8000/`;
    expect((await fetch(`${base}index.html`, { headers: { cookie: cookie.split(";")[0] as string } })).status).toBe(
      200,
    );
    expect((await fetch(base, { headers: { "x-kiln-preview-token": made.body.token } })).status).toBe(200);
    const withDefault = await t.api("POST", `/v1/sandboxes/${web}/ports/8000/preview`);
    expect(Date.parse(withDefault.body.expiresAt) - Date.now()).toBeGreaterThan(3_500_000);
  });

  it("refuses missing, forged, expired and other-port tokens with 401", async () => {
    const base = `${t.url}/preview/${web}/8000/`;
    const none = await fetch(base, { redirect: "manual" });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    const token = (await t.api("POST", `/v1/sandboxes/${web}/ports/8000/preview`)).body.token as string;
    const forged = `${Buffer.from(JSON.stringify({ s: web, p: 8000, e: Date.now() + 1e9 })).toString("base64url")}.${token.split(".")[1]}`;
    expect((await fetch(`${base}?token=${forged}`, { redirect: "manual" })).status).toBe(401);
    const other = (await t.api("POST", `/v1/sandboxes/${web}/ports/8765/preview`)).body.token as string;
    expect((await fetch(base, { headers: { "x-kiln-preview-token": other } })).status).toBe(401);
    const otherSandbox = `${t.url}/preview/${sandboxId}/8000/`;
    expect((await fetch(otherSandbox, { headers: { "x-kiln-preview-token": token } })).status).toBe(401);
    const short = (await t.api("POST", `/v1/sandboxes/${web}/ports/8000/preview`, { body: { expiresInMs: 1_000 } }))
      .body;
    expect((await fetch(short.url)).status).toBe(200);
    await sleep(1_100);
    expect((await fetch(short.url, { redirect: "manual" })).status).toBe(401);
    const badPort = await t.api("POST", `/v1/sandboxes/${web}/ports/70000/preview`);
    expect(badPort.status).toBe(400);
    const foreign = await addOrgKey(t.dataDir, "oprev");
    expect((await t.api("POST", `/v1/sandboxes/${web}/ports/8000/preview`, { key: foreign })).status).toBe(404);
  });

  it("relays WebSocket upgrades to an echo server in the sandbox", async () => {
    const made = (await t.api("POST", `/v1/sandboxes/${web}/ports/8765/preview`)).body;
    const ws = new WebSocket(made.url.replace("http", "ws"));
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const echoed = new Promise<string>((resolve) => ws.once("message", (data) => resolve(String(data))));
    ws.send("hello through the preview");
    expect(await echoed).toBe("hello through the preview");
    ws.close();
    expect(await refusedStatus(`${t.url.replace("http", "ws")}/preview/${web}/8765/`)).toBe(401);
  });
});

describe("a server restart", () => {
  it("closes attached terminals at once; the terminal and preview URLs live on into the next server", async () => {
    const created = await t.api("POST", `/v1/sandboxes/${sandboxId}/pty`, { body: { cols: 80, rows: 24 } });
    const ptyId = created.body.ptyId as string;
    const term = await terminal(sandboxId, ptyId);
    term.ws.send(Buffer.from("export MARK=before-$((2*3))\n"), { binary: true });
    await sleep(200);
    await t.api("POST", `/v1/sandboxes/${sandboxId}/processes`, {
      body: { command: "python3 -m http.server 8001 --bind 127.0.0.1" },
    });
    const preview = (await t.api("POST", `/v1/sandboxes/${sandboxId}/ports/8001/preview`)).body as { url: string };
    const started = Date.now();
    await t.restart();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await term.closed).not.toBe(1000);
    const again = await terminal(sandboxId, ptyId);
    again.ws.send(Buffer.from("echo $MARK\n"), { binary: true });
    await again.until("before-6\r\n");
    again.ws.send(Buffer.from("exit\n"), { binary: true });
    await again.closed;
    const url = preview.url.replace(/^http:\/\/[^/]+/, t.url);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await fetch(url)).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
  });
});
