// Hostile and malformed requests: each gets a clear 4xx naming the field, never a crash.
import { request } from "node:http";
import { connect } from "node:net";
import { Kiln } from "@kiln/core";
import { describe, expect, inject, it } from "vitest";
import { testServer } from "./helpers.ts";

const t = await testServer({ maxUploadMb: 1 });
const box = await t.create();
const id = box.id as string;

function rawPost(path: string, body: string, headers: Record<string, string> = {}) {
  return t.api("POST", path, { raw: body, headers: { "content-type": "application/json", ...headers } });
}

/**
 * Sends only a request's headers (flushed, no body byte ever) and reads the answer: a limit
 * declared too large must be refused before the body is sent.
 */
function headersOnly(method: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(new URL(`${t.url}${path}`), {
      method,
      headers: { authorization: `Bearer ${t.key}`, ...headers },
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.flushHeaders();
  });
}

describe("request bodies", () => {
  it.each([
    ["malformed JSON", "/v1/sandboxes", '{"name": ', "body"],
    ["a wrong type", "/v1/sandboxes", '{"name": 5}', "name"],
    ["an unknown field", "/v1/sandboxes", '{"nmae": "x"}', "nmae"],
    ["an overflowing number", `/v1/sandboxes/ID/exec`, '{"command": "true", "timeoutMs": 1e309}', "timeoutMs"],
    ["NaN-like strings", `/v1/sandboxes/ID/exec`, '{"command": "true", "timeoutMs": "NaN"}', "timeoutMs"],
    ["a negative size", "/v1/sandboxes", '{"resources": {"memoryMb": -1}}', "resources.memoryMb"],
    ["a negative output cap", `/v1/sandboxes/ID/exec`, '{"command": "true", "maxOutputBytes": -5}', "maxOutputBytes"],
    ["a command that is an object", `/v1/sandboxes/ID/exec`, '{"command": {"sh": 1}}', "command"],
    ["a NUL byte in a command", `/v1/sandboxes/ID/exec`, '{"command": "echo a\\u0000b"}', "command"],
    ["a NUL byte in a label", "/v1/sandboxes", '{"labels": {"a": "x\\u0000"}}', "labels.a"],
    ["a bad name", "/v1/sandboxes", '{"name": "../etc"}', "name"],
    ["a '..' mkdir path", `/v1/sandboxes/ID/files/mkdir`, '{"path": "../../etc"}', "path"],
    [
      "deeply nested JSON",
      `/v1/sandboxes/ID/exec`,
      `{"command": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
      "command",
    ],
    ["a body that is not an object", "/v1/sandboxes", "[1,2]", "body"],
  ])("%s is a 400 naming the field", async (_what, path, body, field) => {
    const res = await rawPost(path.replace("ID", id), body);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe("INVALID_ARGUMENT");
    expect(res.body.error.field).toBe(field);
    expect(res.body.error.message).toBeTruthy();
  });

  it("a refused request with deeply nested JSON is still audited (its detail bounded)", async () => {
    const body = `{"command": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    expect((await rawPost(`/v1/sandboxes/${id}/exec`, body)).status).toBe(400);
    const [last] = (await t.api("GET", "/v1/audit?limit=1")).body.events;
    expect(last).toMatchObject({ action: "sandbox.exec", target: id, outcome: "error", status: 400 });
    expect(JSON.stringify(last.detail).length).toBeLessThan(1000);
  });

  it("a volume mount over a system path is refused by core and named", async () => {
    const res = await t.api("POST", "/v1/sandboxes", { body: { volumes: [{ volume: "v", mountPath: "/etc" }] } });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe("volumes[0].mountPath");
  });

  it("a wrong Content-Type is a 400", async () => {
    const res = await t.api("POST", "/v1/sandboxes", { raw: "{}", headers: { "content-type": "text/plain" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("INVALID_ARGUMENT");
  });

  it("'..' and NUL in file paths are 400s", async () => {
    for (const path of ["../../etc/passwd", "a/../../x", "a%00b"]) {
      const res = await t.api("GET", `/v1/sandboxes/${id}/files?path=${path}`);
      expect(res.status, path).toBe(400);
      expect(res.body.error.field).toBe("path");
    }
    const missing = await t.api("GET", `/v1/sandboxes/${id}/files`);
    expect(missing.status).toBe(400);
    expect(missing.body.error.field).toBe("path");
  });

  it("an oversized JSON body is a 413", async () => {
    const res = await rawPost(
      `/v1/sandboxes/${id}/exec`,
      JSON.stringify({ command: "true", stdin: "x".repeat(17 * 1024 * 1024) }),
    );
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  // The limit reads Content-Length from the Node request (pipeline/body-limit.ts); a body without
  // one is counted as it arrives. Both must refuse what is over and read what is under.
  it("a declared JSON Content-Length over the limit gets 413 before the body is sent", async () => {
    const answer = await headersOnly("POST", `/v1/sandboxes/${id}/exec`, {
      "content-type": "application/json",
      "content-length": String(17 * 1024 * 1024),
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("a request with neither Content-Length nor Transfer-Encoding has no body: a 400, not a wait", async () => {
    const { host, port } = new URL(t.url);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), host.replace(/:\d+$/, "").replace(/^\[|\]$/g, ""));
      let got = "";
      socket.on("data", (c) => (got += c));
      socket.on("end", () => resolve(got));
      socket.on("error", reject);
      socket.write(
        `POST /v1/sandboxes/${id}/exec HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${t.key}\r\n` +
          "Content-Type: application/json\r\nConnection: close\r\n\r\n",
      );
    });
    expect(text.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).error.code).toBe("INVALID_ARGUMENT");
  });

  it("a chunked JSON body (no Content-Length) is read when under the limit and a 413 when over", async () => {
    // {"command": "echo ok", "env": {"A": "aaaa..."}}, a few bytes per chunk.
    const parts = ['{"command": "echo ok", "env": {"A": "', ..."a".repeat(64).split(""), '"}}'];
    let i = 0;
    const small = new ReadableStream<Uint8Array>({
      pull(controller) {
        const part = parts[i++];
        if (part === undefined) return controller.close();
        controller.enqueue(new TextEncoder().encode(part));
      },
    });
    const ok = await fetch(`${t.url}/v1/sandboxes/${id}/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body: small,
      duplex: "half",
    } as RequestInit);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { stdout: string }).stdout).toBe("ok\n");

    // Over the limit: on its own connection (the server may close it after refusing), written
    // until the answer comes.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(new URL(`${t.url}/v1/sandboxes/${id}/exec`), {
        method: "POST",
        agent: false,
        headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      });
      let answered = false;
      req.on("response", (res) => {
        answered = true;
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", (err) => {
        if (!answered) reject(err);
      });
      const chunk = Buffer.alloc(64 * 1024, " ");
      let sent = 0;
      const write = () => {
        while (!answered && sent < 17 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", write);
        }
        if (!answered) req.end();
      };
      write();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.code).toBe("PAYLOAD_TOO_LARGE");
    // The server goes on.
    expect((await t.api("GET", `/v1/sandboxes/${id}`)).status).toBe(200);
  });
});

describe("uploads over the limit", () => {
  it("a declared Content-Length over the limit gets 413 before the body is sent", async () => {
    const answer = await headersOnly("PUT", `/v1/sandboxes/${id}/files?path=big.bin`, {
      "content-length": String(2 * 1024 * 1024),
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("a chunked upload that passes the limit is cut off with 413 and leaves no file", async () => {
    const chunk = new Uint8Array(64 * 1024);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 4 * 1024 * 1024) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${t.url}/v1/sandboxes/${id}/files?path=big.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.key}` },
      body,
      duplex: "half",
    } as RequestInit).catch((err: Error) => err);
    if (res instanceof Error) throw res;
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("PAYLOAD_TOO_LARGE");
    expect((await t.api("GET", `/v1/sandboxes/${id}/files/stat?path=big.bin`)).status).toBe(404);
    // The server goes on.
    expect((await t.api("GET", `/v1/sandboxes/${id}`)).status).toBe(200);
  });
});

describe("authentication", () => {
  it("a missing, malformed or unknown key is 401", async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: "Basic abc" },
      { authorization: `Bearer ${t.key}x` },
      { authorization: "Bearer kiln_nope" },
    ]) {
      const res = await t.api("GET", "/v1/sandboxes", { key: null, headers });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("UNAUTHORIZED");
    }
  });

  it("an unknown route or method is 404 NOT_FOUND", async () => {
    for (const [method, path] of [
      ["GET", "/nope"],
      ["PATCH", "/v1/sandboxes"],
      ["GET", "/v1/nope"],
    ] as const) {
      const res = await t.api(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("NOT_FOUND");
    }
  });

  it("failed authentication is rate limited per address: 30 a minute, then 429 with Retry-After", async () => {
    const s = await testServer();
    let last = 0;
    for (let i = 0; i < 30; i++)
      last = (await s.api("GET", "/v1/sandboxes", { key: `kiln_wrong${i}xxxxxxxxxx` })).status;
    expect(last).toBe(401);
    const limited = await s.api("GET", "/v1/sandboxes", { key: "kiln_wrongagainxxxxxx" });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Until the window passes, the address is refused even with a good key.
    expect((await s.api("GET", "/v1/sandboxes")).status).toBe(429);
    // Unauthenticated routes are not affected.
    expect((await s.api("GET", "/healthz", { key: null })).status).toBe(200);
  });
});

describe("faults", () => {
  it("an unexpected failure is a 500 INTERNAL without a stack or the message", async () => {
    const real = new Kiln({ image: inject("runtimeImage") });
    const broken = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === "list") return () => Promise.reject(new Error("secret detail at /internal/path.ts:12"));
        return Reflect.get(target, prop, receiver);
      },
    });
    const s = await testServer({ kiln: broken });
    const res = await s.api("GET", "/v1/sandboxes");
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe("INTERNAL");
    expect(res.text).not.toContain("secret");
    expect(res.text).not.toContain(".ts");
    expect((await s.api("GET", "/v1/snapshots")).status).toBe(200);
    await real.close();
  });
});
