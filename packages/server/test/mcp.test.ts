// /mcp: the official MCP client SDK over Streamable HTTP against a real server started in this
// process: Bearer keys through the server's pipeline, scopes per tool, one sandbox per session
// deleted on DELETE /mcp, malformed arguments as tool errors.
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, describe, expect, it } from "vitest";
import { addOrgKey, testServer } from "./helpers.ts";

const t = await testServer();
// An organisation of this file's own: its sandboxes carry kiln.org=<org>, so the test counts and
// removes exactly them.
const org = `mcp${randomBytes(4).toString("hex")}`;
const key = await addOrgKey(t.dataDir, org);
const clients: { client: Client; transport: StreamableHTTPClientTransport }[] = [];

afterAll(async () => {
  for (const c of clients) await c.client.close().catch(() => {});
  for (const info of await orgSandboxes()) await (await t.kiln.get(info.id)).delete().catch(() => {});
});

function orgSandboxes() {
  return t.kiln.list({ labels: { "kiln.org": org } });
}

async function open(bearer = key) {
  const transport = new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "kiln-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push({ client, transport });
  return { client, transport };
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;

const text = (result: CallToolResult) =>
  result.content
    .filter((c) => c.type === "text")
    .map((c) => (c as { text: string }).text)
    .join("\n");

describe("/mcp (Streamable HTTP)", () => {
  it("needs a valid key", async () => {
    const res = await t.api("POST", "/mcp", {
      key: null,
      body: { jsonrpc: "2.0", id: 1, method: "initialize", params: {} },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("UNAUTHORIZED");
  });

  it("lists the tools, runs code that prints, fails and draws, and round-trips files", async () => {
    const { client } = await open();
    const { tools } = await client.listTools();
    expect(tools.map((x) => x.name)).toEqual(
      expect.arrayContaining(["run_code", "run_command", "read_file", "write_file", "list_files", "preview_url"]),
    );
    expect(tools).toHaveLength(11);
    const props = tools.find((x) => x.name === "write_file")?.inputSchema.properties as Record<string, object>;
    expect(Object.keys(props).sort()).toEqual(["content", "path", "sandbox"]);

    expect(text(await call(client, "run_code", { code: "print(sum(range(10)))" }))).toContain("45");
    const failed = await call(client, "run_code", { code: "raise ValueError('bad input')" });
    expect(failed.isError).toBe(true);
    expect(text(failed)).toContain("ValueError: bad input");
    const chart = await call(client, "run_code", {
      code: "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.show()",
    });
    const image = chart.content.find((c) => c.type === "image") as { data: string; mimeType: string } | undefined;
    expect(image?.mimeType).toBe("image/png");
    expect(
      Buffer.from(image?.data ?? "", "base64")
        .subarray(1, 4)
        .toString(),
    ).toBe("PNG");

    await call(client, "write_file", { path: "report.md", content: "# Sales\n" });
    expect(text(await call(client, "read_file", { path: "report.md" }))).toBe("# Sales\n");
    expect(text(await call(client, "list_files", {}))).toContain("report.md");

    const malformed = await call(client, "read_file", { path: ["not", "a", "string"] });
    expect(malformed.isError).toBe(true);
    expect(text(malformed)).toMatch(/invalid arguments/i);
    expect(text(await call(client, "run_command", { command: "cat report.md" }))).toContain("# Sales");
  });

  it("gives two sessions two sandboxes and deletes a session's sandbox on DELETE /mcp", async () => {
    const before = (await orgSandboxes()).length;
    const a = await open();
    const b = await open();
    expect(a.transport.sessionId).not.toBe(b.transport.sessionId);
    await call(a.client, "run_command", { command: "echo a > who.txt" });
    await call(b.client, "run_command", { command: "echo b > who.txt" });
    expect(text(await call(a.client, "read_file", { path: "who.txt" }))).toBe("a\n");
    expect(text(await call(b.client, "read_file", { path: "who.txt" }))).toBe("b\n");
    expect(await orgSandboxes()).toHaveLength(before + 2);

    const listed = JSON.parse(text(await call(a.client, "list_sandboxes", {}))) as { sandboxes: { id: string }[] };
    expect(listed.sandboxes.length).toBe(before + 2);

    // Another key cannot use this session.
    const other = await addOrgKey(t.dataDir, org);
    const res = await fetch(`${t.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${other}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": a.transport.sessionId as string,
        "mcp-protocol-version": "2025-06-18",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    expect(res.status).toBe(404);

    await a.transport.terminateSession();
    expect(await orgSandboxes()).toHaveLength(before + 1);
    await b.transport.terminateSession();
    expect(await orgSandboxes()).toHaveLength(before);
  });

  it("refuses a tool whose scope the key lacks with a FORBIDDEN tool result", async () => {
    const readOnly = await addOrgKey(t.dataDir, org, { scopes: ["sandboxes:read", "files:read"] });
    const { client } = await open(readOnly);
    const refused = await call(client, "run_code", { code: "print(1)" });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toBe('FORBIDDEN: This key lacks the scope "sandboxes:exec"');
    const write = await call(client, "write_file", { path: "x.txt", content: "x" });
    expect(text(write)).toContain('"files:write"');
    // The session goes on: list_sandboxes needs only sandboxes:read.
    const listed = await call(client, "list_sandboxes", {});
    expect(listed.isError).toBeFalsy();
    expect(JSON.parse(text(listed)).sandboxes).toBeInstanceOf(Array);
  });
});
