// Live exec stdin over HTTP: POST …/exec with stdinStream (SSE) starts the command and names it
// in a `started` event; POST …/exec/{execId}/stdin streams its stdin. Raw HTTP, real engine.
import { describe, expect, it } from "vitest";
import { addOrgKey, testServer } from "./helpers.ts";

const t = await testServer();
const other = await addOrgKey(t.dataDir, "org_stdin0test1");
const box = await t.create();
const id = box.id as string;

/** Starts an exec with stdinStream and reads its SSE until `started`; the rest is read by `events()`. */
async function startLive(command: string, key = t.key) {
  const res = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ command, stdinStream: true, timeoutMs: 30_000 }),
  });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    for (;;) {
      const end = buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").find((l) => l.startsWith("data: "));
        if (data) return JSON.parse(data.slice(6)) as Record<string, unknown>;
        continue;
      }
      const { done, value } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  };
  const started = await next();
  expect(started).toMatchObject({ type: "started", execId: expect.stringMatching(/^exec_/) });
  const events = async () => {
    const all: Record<string, unknown>[] = [];
    for (let e = await next(); e; e = await next()) all.push(e);
    return all;
  };
  return { execId: started?.execId as string, next, events };
}

const stdinUrl = (execId: string) => `${t.url}/v1/sandboxes/${id}/exec/${execId}/stdin`;

describe("live exec stdin", () => {
  it("streams a request body into the command as it arrives; its end closes stdin", async () => {
    const live = await startLive('while read l; do echo "got $l"; done; echo eof');
    let push: (text: string | null) => void = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => (text === null ? controller.close() : controller.enqueue(new TextEncoder().encode(text)));
      },
    });
    const sent = fetch(stdinUrl(live.execId), {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);
    push("one\n");
    // The command answers the first line while the stdin request is still open.
    expect(await live.next()).toEqual({ type: "stdout", data: "got one\n" });
    push("two\n");
    push(null);
    expect((await sent).status).toBe(204);
    const rest = await live.events();
    const stdout = rest.filter((e) => e.type === "stdout").map((e) => e.data);
    expect(stdout.join("")).toBe("got two\neof\n");
    expect(rest.at(-1)).toMatchObject({ type: "result", result: { exitCode: 0, stdout: "got one\ngot two\neof\n" } });
  });

  it("is the organisation's own: another's key gets 404; a second stdin request 409; after the end 404", async () => {
    const live = await startLive("cat");
    const post = (key: string, body: string) =>
      fetch(stdinUrl(live.execId), {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
        body,
      });
    const foreign = await post(other, "x");
    expect(foreign.status).toBe(404);
    // Held open: the first attach.
    let close: () => void = () => {};
    const held = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("held\n"));
        close = () => controller.close();
      },
    });
    const first = fetch(stdinUrl(live.execId), {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/octet-stream" },
      body: held,
      duplex: "half",
    } as RequestInit);
    expect(await live.next()).toEqual({ type: "stdout", data: "held\n" });
    const second = await post(t.key, "again");
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe("CONFLICT");
    close();
    expect((await first).status).toBe(204);
    expect((await live.events()).at(-1)).toMatchObject({ type: "result", result: { stdout: "held\n" } });
    const after = await post(t.key, "late");
    expect(after.status).toBe(404);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
  });

  it("cancels a running exec through its execId; the stream then ends with the killed result", async () => {
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ command: "echo up; sleep 32", cancellable: true }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes('"type":"stdout"')) text += new TextDecoder().decode((await reader.read()).value);
    const execId = /"execId":"(exec_[^"]+)"/.exec(text)?.[1] as string;
    expect(execId).toBeDefined();
    const cancelUrl = `${t.url}/v1/sandboxes/${id}/exec/${execId}/cancel`;
    const post = (key: string) => fetch(cancelUrl, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    expect((await post(other)).status).toBe(404);
    // Started without stdinStream: its stdin cannot be attached.
    const noStdin = await fetch(`${t.url}/v1/sandboxes/${id}/exec/${execId}/stdin`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/octet-stream" },
      body: "x",
    });
    expect(noStdin.status).toBe(409);
    expect((await post(t.key)).status).toBe(204);
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    expect(text).toContain('"status":"killed"');
    expect(
      (await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "pgrep -fx 'sleep 32' || true" } })).body
        .stdout,
    ).toBe("");
    expect((await post(t.key)).status).toBe(404);
    // A live-stdin exec is cancelled the same way.
    const live = await startLive("sleep 5");
    const plain = await fetch(`${t.url}/v1/sandboxes/${id}/exec/${live.execId}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}` },
    });
    expect(plain.status).toBe(204);
    expect((await live.events()).at(-1)).toMatchObject({ type: "result", result: { status: "killed" } });
  });

  it("refuses stdinStream without SSE, or with stdin", async () => {
    const json = await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "cat", stdinStream: true } });
    expect(json.status).toBe(400);
    expect(json.body.error.field).toBe("stdinStream");
    const both = await t.api("POST", `/v1/sandboxes/${id}/exec`, {
      body: { command: "cat", stdin: "x", stdinStream: true },
      headers: { accept: "text/event-stream" },
    });
    expect(both.status).toBe(400);
    expect(both.body.error.field).toBe("stdinStream");
  });

  it("audits the stdin request without its bytes", async () => {
    const live = await startLive("cat");
    const sent = await fetch(stdinUrl(live.execId), {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/octet-stream" },
      body: "secret-stdin-text",
    });
    expect(sent.status).toBe(204);
    await live.events();
    const audit = await t.api("GET", "/v1/audit?limit=500");
    const event = audit.body.events.find((e: { action: string }) => e.action === "sandbox.stdin");
    expect(event).toMatchObject({ outcome: "ok", status: 204 });
    expect(JSON.stringify(audit.body)).not.toContain("secret-stdin-text");
  });
});
