// One session's McpServer over the SDK's in-memory transport, against the real Docker engine:
// the idle timer deletes the session's sandbox (and the next call makes a new one), a named
// sandbox is used instead of the session's, and close() leaves create_sandbox's sandboxes alone.
import { Kiln } from "@kiln/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createKilnMcpSession, kilnBackend } from "../src/index.ts";
import { TEST_LABELS } from "./labels.ts";

const kiln = new Kiln({ image: inject("runtimeImage"), pool: false });

afterAll(async () => {
  for (const info of await kiln.list({ labels: TEST_LABELS })) {
    await (await kiln.get(info.id)).delete().catch(() => {});
  }
  await kiln.close();
});

async function open(idleTimeoutMs: number, onIdle?: () => void) {
  const session = createKilnMcpSession({
    backend: kilnBackend(kiln),
    sandboxOptions: { labels: TEST_LABELS },
    idleTimeoutMs,
    ...(onIdle ? { onIdle } : {}),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await session.server.connect(serverSide);
  const client = new Client({ name: "kiln-test", version: "1.0.0" });
  await client.connect(clientSide);
  const call = async (name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { session, client, call };
}

const text = (result: CallToolResult) =>
  result.content
    .filter((c) => c.type === "text")
    .map((c) => (c as { text: string }).text)
    .join("\n");

const exists = (id: string) =>
  kiln.get(id).then(
    () => true,
    () => false,
  );

describe("an MCP session", () => {
  it("deletes its sandbox when idle, and makes a new one on the next call", async () => {
    let idled = 0;
    const { session, call } = await open(3_000, () => idled++);
    expect(text(await call("run_code", { code: "v = 1\nprint(v)" }))).toContain("1");
    const first = session.sandboxId as string;
    expect(await exists(first)).toBe(true);
    await expect.poll(() => exists(first), { timeout: 30_000, interval: 500 }).toBe(false);
    expect(idled).toBe(1);
    expect(text(await call("run_command", { command: "echo again" }))).toContain("again");
    expect(session.sandboxId).not.toBe(first);
    await session.close();
  });

  it("never deletes its sandbox for idleness while a call runs in it, however long the call", async () => {
    let idled = 0;
    const { session, call } = await open(1_000, () => idled++);
    // Longer than the idle timeout: the clock only runs between calls.
    const slow = await call("run_command", { command: "sleep 2.5; echo finished" });
    expect(text(slow)).toContain("finished");
    const id = session.sandboxId as string;
    expect(await exists(id)).toBe(true);
    expect(idled).toBe(0);
    // Idle after it: deleted as usual.
    await expect.poll(() => exists(id), { timeout: 30_000, interval: 250 }).toBe(false);
    expect(idled).toBe(1);
    await session.close();
  });

  it("uses a named sandbox, deletes only its own on close, and errors name the code", async () => {
    const { session, call } = await open(0);
    const made = JSON.parse(text(await call("create_sandbox", { labels: TEST_LABELS, name: `mcp-${Date.now()}` }))) as {
      id: string;
      name: string;
    };
    await call("write_file", { path: "where.txt", content: "named", sandbox: made.name });
    expect(session.sandboxId).toBeUndefined();
    expect(text(await call("read_file", { path: "where.txt", sandbox: made.id }))).toBe("named");
    const own = await call("read_file", { path: "where.txt" });
    expect(own.isError).toBe(true);
    const ownId = session.sandboxId as string;
    const gone = await call("run_command", { command: "true", sandbox: "no-such-sandbox" });
    expect(gone.isError).toBe(true);
    expect(text(gone)).toMatch(/^SANDBOX_NOT_FOUND: /);
    await session.close();
    expect(await exists(ownId)).toBe(false);
    expect(await exists(made.id)).toBe(true);
    await (await kiln.get(made.id)).delete();
  });
});
