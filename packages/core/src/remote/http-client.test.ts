// The JSON calls' transport against a real HTTP server on loopback (node:http, no Kiln server
// needed): keep-alive reuse, a reused connection the server drops before answering (sent again
// on a fresh one), and a fresh connection that fails (reported, not sent again). And why
// processes.wait() is an event stream, not one JSON answer: a process may stay quiet for longer
// than a JSON call may stay silent (the client's idle timeout); tests/remote covers the real server.
import { createServer, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ServerUnavailableError, UnauthorizedError } from "../errors.ts";
import { HttpClient } from "./http-client.ts";
import { RemoteProcesses } from "./remote-terminals.ts";

const KEY = "kiln_test_key_0123456789";
let server: Server | undefined;
afterEach(async () => {
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

/** A server answering `{ n }` (its request count) on each connection; `drop` may cut a request instead. */
async function start(drop: (requestOnSocket: number, socketNumber: number) => boolean): Promise<string> {
  const perSocket = new WeakMap<Socket, number>();
  const sockets: Socket[] = [];
  let requests = 0;
  server = createServer((req, res) => {
    const socket = req.socket;
    if (!sockets.includes(socket)) sockets.push(socket);
    const onSocket = (perSocket.get(socket) ?? 0) + 1;
    perSocket.set(socket, onSocket);
    req.resume();
    req.on("end", () => {
      if (drop(onSocket, sockets.indexOf(socket) + 1)) {
        socket.destroy(); // no answer at all: the client sees ECONNRESET
        return;
      }
      requests++;
      if (req.headers.authorization !== `Bearer ${KEY}`) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "UNAUTHORIZED", message: "Unknown API key" } }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ n: requests, socket: sockets.indexOf(socket) + 1 }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("HttpClient JSON calls", () => {
  it("reuse one keep-alive connection", async () => {
    const client = new HttpClient(await start(() => false), KEY);
    const a = await client.json<{ socket: number }>("POST", "/x", { json: { a: 1 }, what: "test" });
    const b = await client.json<{ socket: number }>("GET", "/x", { what: "test" });
    expect([a.socket, b.socket]).toEqual([1, 1]);
    client.close();
  });

  it("send a request again on a fresh connection when a reused one is dropped before any answer", async () => {
    // The second request on the first connection is dropped, as a server closing an idle connection would.
    const client = new HttpClient(await start((onSocket, socket) => socket === 1 && onSocket === 2), KEY);
    expect((await client.json<{ socket: number }>("POST", "/x", { json: {}, what: "test" })).socket).toBe(1);
    const again = await client.json<{ n: number; socket: number }>("POST", "/x", { json: {}, what: "test" });
    expect(again).toEqual({ n: 2, socket: 2 });
    client.close();
  });

  it("report a fresh connection dropped before any answer, without sending again", async () => {
    let dropped = 0;
    const client = new HttpClient(
      await start(() => {
        dropped++;
        return true;
      }),
      KEY,
    );
    await expect(client.json("POST", "/x", { json: {}, what: "test" })).rejects.toBeInstanceOf(ServerUnavailableError);
    expect(dropped).toBe(1);
    client.close();
  });

  it("turn an error answer into its KilnError", async () => {
    const client = new HttpClient(await start(() => false), "kiln_wrong_key_0123456789");
    await expect(client.empty("DELETE", "/x", { what: "test" })).rejects.toBeInstanceOf(UnauthorizedError);
    client.close();
  });
});

describe("HttpClient uploads", () => {
  /** A server that refuses every body over `limit` at its 100 Continue, counting the body bytes it receives. */
  async function refusing(limit: number): Promise<{ url: string; received: () => number }> {
    let received = 0;
    const answer = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
      req.on("data", (c: Buffer) => {
        received += c.length;
      });
      if (Number(req.headers["content-length"]) > limit) {
        res.writeHead(413, { "content-type": "application/json", connection: "close" });
        res.end(JSON.stringify({ error: { code: "PAYLOAD_TOO_LARGE", message: "too large" } }));
        return;
      }
      req.on("end", () => res.writeHead(204).end());
    };
    const s = createServer(answer);
    server = s;
    s.on("checkContinue", (req, res) => {
      if (!(Number(req.headers["content-length"]) > limit)) res.writeContinue();
      s.emit("request", req, res);
    });
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, received: () => received };
  }
  const bytes = (n: number) => () => Readable.from([Buffer.alloc(n, 1)]);

  it("never send a body the server refuses at its 100 Continue, and report the refusal (20 times)", async () => {
    const { url, received } = await refusing(1024);
    const client = new HttpClient(url, KEY);
    for (let i = 0; i < 20; i++) {
      const err = await client
        .upload("/up", bytes(4 * 1024 * 1024), { contentLength: 4 * 1024 * 1024, what: "test" })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
    }
    expect(received()).toBe(0);
    await client.upload("/up", bytes(100), { contentLength: 100, what: "test" });
    expect(received()).toBe(100);
    client.close();
  });

  it("send the body anyway, after a wait, to a server that ignores Expect", async () => {
    // A raw TCP server that speaks just enough HTTP/1.1 and never sends 100 Continue.
    let received = 0;
    const raw = createNetServer((socket) => {
      let head = "";
      let body = 0;
      let length = -1;
      socket.on("data", (chunk: Buffer) => {
        if (length < 0) {
          head += chunk.toString("latin1");
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) return;
          length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          body = Buffer.byteLength(head.slice(end + 4), "latin1");
        } else body += chunk.length;
        if (length >= 0 && body >= length) {
          received = body;
          socket.end("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
    try {
      const client = new HttpClient(`http://127.0.0.1:${(raw.address() as AddressInfo).port}`, KEY);
      const started = Date.now();
      await client.upload("/up", bytes(100), { contentLength: 100, what: "test" });
      expect(received).toBe(100);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900); // it waited for a 100 that never came
      client.close();
    } finally {
      await new Promise((resolve) => raw.close(resolve));
    }
  });
});

/** The logs route of a process that ends with `exitCode` after `runsMs` of silence. */
async function startLogs(runsMs: number, exitCode: number, keepAliveMs = 50): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    if (!req.url?.includes("/processes/7/logs?follow=true")) {
      res.writeHead(404).end();
      return;
    }
    if (!(req.headers.accept ?? "").includes("text/event-stream")) {
      // One JSON answer, once the process has ended: silent until then.
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ stdout: "", stderr: "", exitCode }));
      }, runsMs);
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(`data: ${JSON.stringify({ type: "stdout", data: "working\n" })}\n\n`);
    const alive = setInterval(() => res.write(": keep-alive\n\n"), keepAliveMs);
    setTimeout(() => {
      clearInterval(alive);
      res.end(`data: ${JSON.stringify({ type: "result", result: { stdout: "working\n", stderr: "", exitCode } })}\n\n`);
    }, runsMs);
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("remote processes.wait()", () => {
  it("outlasts the client's idle timeout: the stream's keep-alives carry the wait", async () => {
    const url = await startLogs(900, 4);
    const processes = new RemoteProcesses(new HttpClient(url, KEY, { idleTimeoutMs: 300 }), "sb");
    expect(await processes.wait(7)).toEqual({ exitCode: 4 });
  });

  it("a stream cut before the result is an error, not an exit code", async () => {
    server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`data: ${JSON.stringify({ type: "stdout", data: "x" })}\n\n`);
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const processes = new RemoteProcesses(new HttpClient(url, KEY), "sb");
    await expect(processes.wait(7)).rejects.toThrow(/ended the stream of process 7 early/);
  });
});
