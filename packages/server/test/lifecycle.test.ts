// Clients that go away mid-stream, graceful shutdown, and a restart that loses nothing.
import { describe, expect, it } from "vitest";
import { testServer } from "./helpers.ts";

const t = await testServer();
const box = await t.create({ name: `life-${process.pid}` });
const id = box.id as string;

/** How many processes in the sandbox carry `marker` in their command line. */
async function running(marker: string): Promise<number> {
  const half = marker.length >> 1;
  const script = `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '${marker.slice(0, half)}''${marker.slice(half)}' || true`;
  const res = await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: script } });
  return Number(res.body.stdout.trim());
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe("clients that go away", () => {
  it("an SSE client disconnecting mid-stream stops the command, and the server goes on", async () => {
    const marker = `leakmarker${process.pid}sse`;
    const controller = new AbortController();
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ command: `while true; do echo ${marker}; sleep 0.05; done` }),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain(marker);
    expect(await running(marker)).toBeGreaterThan(0);
    controller.abort();
    expect(await waitFor(async () => (await running(marker)) === 0)).toBe(true);
    expect((await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "echo alive" } })).body.stdout).toBe(
      "alive\n",
    );
  });

  it("a JSON client disconnecting stops its command too", async () => {
    const marker = `leakmarker${process.pid}json`;
    const controller = new AbortController();
    const pending = fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body: JSON.stringify({ command: `sleep 30; echo ${marker}` }),
      signal: controller.signal,
    }).catch(() => undefined);
    expect(await waitFor(async () => (await running(marker)) > 0)).toBe(true);
    controller.abort();
    await pending;
    expect(await waitFor(async () => (await running(marker)) === 0)).toBe(true);
  });

  it("code streams stop when the client goes away", async () => {
    const controller = new AbortController();
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/code`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ code: "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)" }),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("tick");
    controller.abort();
    // The interpreter is free again: the next cell runs at once instead of waiting behind the loop.
    const next = await t.api("POST", `/v1/sandboxes/${id}/code`, { body: { code: "6 * 7", timeoutMs: 10_000 } });
    expect(next.body.results[0].text).toBe("42");
  });
});

describe("shutdown and restart", () => {
  it("close() finishes in-flight requests, refuses new ones, and a restart keeps keys and sandboxes", async () => {
    const url = t.url;
    const marker = `/tmp/inflight-${process.pid}`;
    const inflight = t.api("POST", `/v1/sandboxes/${id}/exec`, {
      body: { command: `touch ${marker}; sleep 2; echo finished` },
    });
    // Closed once the request is in flight (its command has begun), not after a fixed 300 ms: on a
    // loaded machine the request may not have reached the server by then, and close() refuses it.
    for (let i = 0; i < 300; i++) {
      const seen = await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: `test -e ${marker}` } });
      if (seen.body.exitCode === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const closeStarted = Date.now();
    const closing = t.server.close();
    const done = await inflight;
    expect(done.status).toBe(200);
    expect(done.body.stdout).toBe("finished\n");
    await closing;
    // Kept-alive connections are closed as soon as their request is done, not at the grace limit.
    expect(Date.now() - closeStarted).toBeLessThan(5000);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();

    await t.restart();
    expect(t.server.createdAdminKey).toBeUndefined();
    const found = await t.api("GET", `/v1/sandboxes/${box.name}`);
    expect(found.status).toBe(200);
    expect(found.body.id).toBe(id);
    expect((await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "echo again" } })).body.stdout).toBe(
      "again\n",
    );
  });
});
