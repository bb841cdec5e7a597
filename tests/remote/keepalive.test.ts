// Long silent streams: the server sends SSE comment keep-alives on a quiet exec/runCode stream,
// and the remote client skips them. The client's HTTP body timeout (undici's, 300 s by default)
// is made short here through the global dispatcher, so that a stream silent for longer than it
// is cut: with keep-alives it is not, and without them (the control) it is. Each call has an
// output callback: only then does the client stream (a call without one takes a JSON answer).
import { Kiln, type Sandbox, ServerUnavailableError } from "@kiln/core";
import { Agent, type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_LABELS } from "./helpers.ts";
import { type TestServer, testServer } from "./server.ts";

const BODY_TIMEOUT_MS = 1_000;
let previous: Dispatcher;
let agent: Agent;
beforeAll(() => {
  previous = getGlobalDispatcher();
  agent = new Agent({ bodyTimeout: BODY_TIMEOUT_MS });
  setGlobalDispatcher(agent);
});
afterAll(async () => {
  setGlobalDispatcher(previous);
  await agent.close();
});

async function withServer(sseKeepAliveMs: number, body: (sandbox: Sandbox) => Promise<void>): Promise<void> {
  const server: TestServer = await testServer({ sseKeepAliveMs });
  const kiln = new Kiln({ url: server.url, apiKey: server.apiKey });
  const made = await kiln.create({ labels: TEST_LABELS });
  try {
    await body(made);
  } finally {
    await made.delete().catch(() => {});
    await kiln.close();
    await server.close();
  }
}

describe("SSE keep-alives", () => {
  it("keep a silent exec and runCode alive past the client's body timeout, and never reach the caller", async () => {
    await withServer(200, async (sb) => {
      const out: string[] = [];
      const result = await sb.exec("sleep 3; echo done", { onStdout: (c) => out.push(c) });
      expect(result).toMatchObject({ exitCode: 0, stdout: "done\n", status: "ok" });
      expect(out.join("")).toBe("done\n");
      const run = await sb.runCode("import time\ntime.sleep(3)\nprint('slept')", { onStdout: () => {} });
      expect(run).toMatchObject({ stdout: "slept\n", status: "ok" });
    });
  });

  it("without them (the control), the same silent stream is cut by that timeout", async () => {
    await withServer(3_600_000, async (sb) => {
      await expect(sb.exec("sleep 3; echo done", { onStdout: () => {} })).rejects.toBeInstanceOf(
        ServerUnavailableError,
      );
    });
  });
});
