// The whole sandbox API through real HTTP against the real engine.
import { describe, expect, it } from "vitest";
import { addOrgKey, sseEvents, testServer } from "./helpers.ts";

const t = await testServer();

describe("sandboxes", () => {
  it("creates, gets by id and name, lists by label, stops, starts and deletes", async () => {
    const name = `api-${process.pid}`;
    const info = await t.create({
      name,
      labels: { role: "api" },
      resources: { memoryMb: 256 },
      language: "javascript",
    });
    expect(info).toMatchObject({
      name,
      state: "running",
      labels: { role: "api" },
      language: "javascript",
      network: "none",
      resources: { cpus: 1, memoryMb: 256, pids: 512 },
    });
    expect(JSON.stringify(info)).not.toContain("kiln.org");
    const byName = await t.api("GET", `/v1/sandboxes/${name}`);
    expect(byName.status).toBe(200);
    expect(byName.body.id).toBe(info.id);
    expect((await t.api("GET", `/v1/sandboxes/${String(info.id).slice(0, 12)}`)).body.name).toBe(name);

    const listed = await t.api("GET", "/v1/sandboxes?label=role=api");
    expect(listed.body.sandboxes.map((s: { id: string }) => s.id)).toContain(info.id);
    expect(listed.body.sandboxes[0]).toHaveProperty("resources");
    const none = await t.api("GET", "/v1/sandboxes?label=role=api&label=other=x");
    expect(none.body.sandboxes).toEqual([]);

    const stopped = await t.api("POST", `/v1/sandboxes/${name}/stop`);
    expect(stopped.body.state).toBe("stopped");
    const notRunning = await t.api("POST", `/v1/sandboxes/${name}/exec`, { body: { command: "true" } });
    expect(notRunning.status).toBeGreaterThanOrEqual(400);
    const started = await t.api("POST", `/v1/sandboxes/${name}/start`);
    expect(started.body.state).toBe("running");

    const conflict = await t.api("POST", "/v1/sandboxes", { body: { name } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toEqual({ code: "CONFLICT", message: `A sandbox named "${name}" already exists` });

    expect((await t.api("DELETE", `/v1/sandboxes/${name}`)).status).toBe(204);
    const gone = await t.api("GET", `/v1/sandboxes/${name}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("SANDBOX_NOT_FOUND");
    expect(gone.body.error.message).toContain(`"${name}"`);
  });
});

describe("exec and code", async () => {
  const box = await t.create();
  const id = box.id as string;

  it("exec answers a CommandResult; a failing command is data", async () => {
    const ok = await t.api("POST", `/v1/sandboxes/${id}/exec`, {
      body: { command: ["sh", "-c", "echo $X; cat; echo e >&2"], env: { X: "1" }, stdin: "in\n", cwd: "/tmp" },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ exitCode: 0, stdout: "1\nin\n", stderr: "e\n", status: "ok", truncated: false });
    const failed = await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "exit 3" } });
    expect(failed.body).toMatchObject({ exitCode: 3, status: "error" });
    const timeout = await t.api("POST", `/v1/sandboxes/${id}/exec`, { body: { command: "sleep 5", timeoutMs: 300 } });
    expect(timeout.body.status).toBe("timeout");
  });

  it("exec streams stdout/stderr as SSE, then the result", async () => {
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ command: "echo one; sleep 0.3; echo two >&2; echo three" }),
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await sseEvents(res);
    expect(events.slice(0, -1).map((e) => e.type)).toEqual(["stdout", "stderr", "stdout"]);
    expect(events.at(-1)).toMatchObject({
      type: "result",
      result: { stdout: "one\nthree\n", stderr: "two\n", exitCode: 0 },
    });
  });

  it("exec output arrives while the command still runs (flushed)", async () => {
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ command: "echo early; sleep 2; echo late" }),
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const started = Date.now();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"early');
    expect(Date.now() - started).toBeLessThan(1500);
    await reader.cancel();
  });

  it("a failure once the stream has begun ends it with an error event", async () => {
    const stopped = await t.create();
    await t.api("POST", `/v1/sandboxes/${stopped.id}/stop`);
    const res = await fetch(`${t.url}/v1/sandboxes/${stopped.id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ command: "echo never" }),
    });
    const events = await sseEvents(res);
    expect(events).toEqual([
      { type: "error", error: { code: "SANDBOX_NOT_RUNNING", message: expect.stringContaining("stopped") } },
    ]);
  });

  it("code keeps state, streams display events, and reports errors as data", async () => {
    const set = await t.api("POST", `/v1/sandboxes/${id}/code`, { body: { code: "x = 20" } });
    expect(set.body.status).toBe("ok");
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/code`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ code: "print('hi')\nx + 22" }),
    });
    const events = await sseEvents(res);
    // print() may arrive as one chunk or several: only the order of kinds matters.
    const kinds = events.map((e) => e.type).filter((k, i, all) => k !== all[i - 1]);
    expect(kinds).toEqual(["stdout", "display", "execution"]);
    expect(
      events
        .filter((e) => e.type === "stdout")
        .map((e) => e.data)
        .join(""),
    ).toBe("hi\n");
    expect(events.find((e) => e.type === "display")).toEqual({
      type: "display",
      result: { text: "42", isMainResult: true },
    });
    expect(events.at(-1)).toMatchObject({ execution: { stdout: "hi\n", results: [{ text: "42" }], status: "ok" } });
    const js = await t.api("POST", `/v1/sandboxes/${id}/code`, { body: { code: "1 + 1", language: "javascript" } });
    expect(js.body.results[0].text).toBe("2");
    const raised = await t.api("POST", `/v1/sandboxes/${id}/code`, { body: { code: "1/0" } });
    expect(raised.status).toBe(200);
    expect(raised.body.error.name).toBe("ZeroDivisionError");
  });
});

describe("files", async () => {
  const box = await t.create();
  const id = box.id as string;
  const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256);

  it("writes raw bytes, reads them back, stats, lists, mkdirs and removes", async () => {
    const put = await t.api("PUT", `/v1/sandboxes/${id}/files?path=dir/sub/data.bin`, { raw: bytes });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({
      name: "data.bin",
      path: "/workspace/dir/sub/data.bin",
      type: "file",
      size: 300_000,
    });
    const get = await fetch(`${t.url}/v1/sandboxes/${id}/files?path=/workspace/dir/sub/data.bin`, {
      headers: { authorization: `Bearer ${t.key}` },
    });
    expect(get.headers.get("content-type")).toBe("application/octet-stream");
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(bytes);

    expect((await t.api("GET", `/v1/sandboxes/${id}/files/stat?path=dir`)).body.type).toBe("directory");
    const mk = await t.api("POST", `/v1/sandboxes/${id}/files/mkdir`, { body: { path: "dir/empty" } });
    expect(mk.status).toBe(201);
    const list = await t.api("GET", `/v1/sandboxes/${id}/files/list?path=dir`);
    expect(list.body.entries.map((e: { name: string }) => e.name).sort()).toEqual(["empty", "sub"]);

    const notEmpty = await t.api("DELETE", `/v1/sandboxes/${id}/files?path=dir`);
    expect(notEmpty.status).toBe(400);
    expect(notEmpty.body.error.code).toBe("FILE_ERROR");
    expect((await t.api("DELETE", `/v1/sandboxes/${id}/files?path=dir&recursive=true`)).status).toBe(204);
    const missing = await t.api("GET", `/v1/sandboxes/${id}/files?path=dir/sub/data.bin`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("FILE_NOT_FOUND");
  });

  it("reading a directory as a file is a 400 FILE_ERROR; an empty upload makes an empty file", async () => {
    const dir = await t.api("GET", `/v1/sandboxes/${id}/files?path=/workspace`);
    expect(dir.status).toBe(400);
    expect(dir.body.error.code).toBe("FILE_ERROR");
    const empty = await t.api("PUT", `/v1/sandboxes/${id}/files?path=empty.txt`, { raw: "" });
    expect(empty.body.size).toBe(0);
  });
});

describe("snapshots and volumes", () => {
  it("snapshots a sandbox, creates one from it, lists and deletes", async () => {
    const box = await t.create();
    await t.api("POST", `/v1/sandboxes/${box.id}/exec`, { body: { command: "echo kept > /workspace/k.txt" } });
    const snap = `snap-${process.pid}`;
    const made = await t.api("POST", `/v1/sandboxes/${box.id}/snapshots`, { body: { name: snap } });
    expect(made.status).toBe(201);
    expect(made.body.name).toBe(snap);
    const again = await t.api("POST", `/v1/sandboxes/${box.id}/snapshots`, { body: { name: snap } });
    expect(again.status).toBe(409);
    expect((await t.api("GET", "/v1/snapshots")).body.snapshots.map((s: { name: string }) => s.name)).toContain(snap);
    const restored = await t.create({ snapshot: snap });
    const read = await t.api("POST", `/v1/sandboxes/${restored.id}/exec`, {
      body: { command: "cat /workspace/k.txt" },
    });
    expect(read.body.stdout).toBe("kept\n");
    await t.api("DELETE", `/v1/sandboxes/${restored.id}`);
    expect((await t.api("DELETE", `/v1/snapshots/${snap}`)).status).toBe(204);
    const gone = await t.api("DELETE", `/v1/snapshots/${snap}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error).toMatchObject({ code: "SNAPSHOT_NOT_FOUND", message: `No snapshot named "${snap}"` });
    const missing = await t.api("POST", "/v1/sandboxes", { body: { snapshot: snap } });
    expect(missing.status).toBe(404);
  });

  it("creates a volume, mounts it, lists and deletes it", async () => {
    const vol = `vol-${process.pid}`;
    const made = await t.api("POST", "/v1/volumes", { body: { name: vol } });
    expect(made.status).toBe(201);
    expect(made.body.name).toBe(vol);
    expect((await t.api("GET", "/v1/volumes")).body.volumes.map((v: { name: string }) => v.name)).toContain(vol);
    const box = await t.create({ volumes: [{ volume: vol, mountPath: "/data" }] });
    const wrote = await t.api("POST", `/v1/sandboxes/${box.id}/exec`, {
      body: { command: "echo v > /data/v && cat /data/v" },
    });
    expect(wrote.body.stdout).toBe("v\n");
    expect((await t.api("DELETE", `/v1/volumes/${vol}`)).status).toBe(409);
    await t.api("DELETE", `/v1/sandboxes/${box.id}`);
    expect((await t.api("DELETE", `/v1/volumes/${vol}`)).status).toBe(204);
    expect((await t.api("DELETE", `/v1/volumes/${vol}`)).status).toBe(404);
  });
});

describe("organisations", () => {
  it("keeps organisations apart: same names in both, another's objects are 404", async () => {
    const other = await addOrgKey(t.dataDir, "o2test");
    const name = `dev-${process.pid}`;
    const mine = await t.create({ name });
    const theirs = await t.create({ name }, other);
    expect(theirs.name).toBe(name);
    expect(theirs.id).not.toBe(mine.id);
    for (const path of [`/v1/sandboxes/${mine.id}`, `/v1/sandboxes/${String(mine.id).slice(0, 12)}`]) {
      const res = await t.api("GET", path, { key: other });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("SANDBOX_NOT_FOUND");
    }
    expect((await t.api("GET", `/v1/sandboxes/${name}`, { key: other })).body.id).toBe(theirs.id);
    expect((await t.api("GET", `/v1/sandboxes/${name}`)).body.id).toBe(mine.id);
    const exec = await t.api("POST", `/v1/sandboxes/${mine.id}/exec`, { key: other, body: { command: "true" } });
    expect(exec.status).toBe(404);
    expect((await t.api("DELETE", `/v1/sandboxes/${mine.id}`, { key: other })).status).toBe(404);
    const theirList = (await t.api("GET", "/v1/sandboxes", { key: other })).body.sandboxes.map(
      (s: { id: string }) => s.id,
    );
    expect(theirList).toEqual([theirs.id]);
    const reserved = await t.api("POST", "/v1/sandboxes", { key: other, body: { labels: { "kiln.org": "default" } } });
    expect(reserved.status).toBe(400);
    expect(reserved.body.error.field).toBe("labels.kiln.org");
    const spoofFilter = await t.api("GET", "/v1/sandboxes?label=kiln.org=default", { key: other });
    expect(spoofFilter.status).toBe(400);
  });

  it("a key restricted to one sandbox reaches that sandbox alone", async () => {
    const a = await t.create();
    const b = await t.create();
    const key = await addOrgKey(t.dataDir, "default", { sandboxId: a.id as string });
    expect((await t.api("GET", `/v1/sandboxes/${a.id}`, { key })).status).toBe(200);
    expect((await t.api("GET", `/v1/sandboxes/${b.id}`, { key })).status).toBe(404);
    expect((await t.api("GET", "/v1/sandboxes", { key })).body.sandboxes.map((s: { id: string }) => s.id)).toEqual([
      a.id,
    ]);
  });

  it("logs one access line per request, with the key's id and never the key", async () => {
    await t.api("GET", "/v1/snapshots");
    const line = t.logs.findLast((l) => l.startsWith("GET /v1/snapshots "));
    expect(line).toMatch(/^GET \/v1\/snapshots 200 \d+ms key_\S+$/);
    expect(t.logs.join("\n")).not.toContain(t.key);
  });

  it("a key without the route's scope is 403", async () => {
    const reader = await addOrgKey(t.dataDir, "default", { scopes: ["sandboxes:read"] });
    expect((await t.api("GET", "/v1/sandboxes", { key: reader })).status).toBe(200);
    const denied = await t.api("POST", "/v1/sandboxes", { key: reader, body: {} });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("FORBIDDEN");
  });
});
