// processes.wait() through a Kiln server is an event stream, not one JSON answer: a process may
// stay quiet for longer than a JSON call may stay silent (the client's idle timeout). Against a
// loopback HTTP server speaking the logs route's two answers (tests/remote covers the real server).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
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

/** The logs route of a process that ends with `exitCode` after `runsMs` of silence. */
async function start(runsMs: number, exitCode: number, keepAliveMs = 50): Promise<string> {
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
    const url = await start(900, 4);
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
