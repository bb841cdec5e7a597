// `kiln mcp` as a child process, driven by the official MCP client SDK over stdio, against the
// real Docker engine: the tools list, code that prints, fails and draws, files, one sandbox per
// session released when the client disconnects, malformed arguments as tool errors.
import { randomUUID } from "node:crypto";
import { Kiln } from "@kiln/core";
import { describeTools, INPUT_DESCRIPTIONS } from "@kiln/core/tools";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, baseEnv, kiln } from "./helpers.ts";
import { LABEL_FLAGS, TEST_LABELS } from "./labels.ts";

const engine = new Kiln({ pool: false });
const clients: Client[] = [];

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const info of await engine.list({ labels: { ...TEST_LABELS, "kiln-adapter": "mcp" } })) {
    await (await engine.get(info.id)).delete().catch(() => {});
  }
  await engine.close();
});

async function open(run = randomUUID()): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp", "--local", ...LABEL_FLAGS, "--label", `mcp-test=${run}`],
    env: baseEnv() as Record<string, string>,
    stderr: "pipe",
  });
  const client = new Client({ name: "kiln-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;

const text = (result: CallToolResult) =>
  result.content
    .filter((c) => c.type === "text")
    .map((c) => (c as { text: string }).text)
    .join("\n");

const sessionSandboxes = (run: string) =>
  engine.list({ labels: { ...TEST_LABELS, "kiln-adapter": "mcp", "mcp-test": run } });

describe("kiln mcp (stdio)", () => {
  it("lists the eleven tools with core's texts and described inputs", async () => {
    const client = await open();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        "create_sandbox",
        "delete_sandbox",
        "list_files",
        "list_sandboxes",
        "preview_url",
        "read_file",
        "run_code",
        "run_command",
        "snapshot_sandbox",
        "start_process",
        "write_file",
      ].sort(),
    );
    const expected = describeTools({ timeoutMs: 60_000, maxOutputChars: 12_000, defaultLanguage: "python" });
    const runCode = tools.find((t) => t.name === "run_code");
    expect(runCode?.description).toBe(expected.run_code);
    const props = runCode?.inputSchema.properties as Record<string, { description?: string }>;
    expect(props.code?.description).toBe(INPUT_DESCRIPTIONS.code);
    expect(runCode?.inputSchema.required).toEqual(["code"]);
    for (const tool of tools) {
      for (const [field, schema] of Object.entries(tool.inputSchema.properties ?? {})) {
        expect((schema as { description?: string }).description, `${tool.name}.${field}`).toBeTruthy();
      }
    }
  });

  it("runs code that prints, fails and draws a chart; files round trip; malformed arguments are tool errors", async () => {
    const client = await open();
    const printed = await call(client, "run_code", { code: "x = 6 * 7\nprint('answer', x)" });
    expect(printed.isError).toBeFalsy();
    expect(text(printed)).toContain("answer 42");

    const failed = await call(client, "run_code", { code: "1 / 0" });
    expect(failed.isError).toBe(true);
    expect(text(failed)).toContain("ZeroDivisionError");

    const chart = await call(client, "run_code", {
      code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [x, 1, 2])\nplt.show()",
    });
    expect(chart.isError).toBeFalsy();
    const image = chart.content.find((c) => c.type === "image") as { data: string; mimeType: string } | undefined;
    expect(image?.mimeType).toBe("image/png");
    expect(
      Buffer.from(image?.data ?? "", "base64")
        .subarray(1, 4)
        .toString(),
    ).toBe("PNG");

    const wrote = await call(client, "write_file", { path: "data/notes.txt", content: "héllo\nworld\n" });
    expect(text(wrote)).toBe("Wrote 13 bytes to /workspace/data/notes.txt.");
    expect(text(await call(client, "read_file", { path: "/workspace/data/notes.txt" }))).toBe("héllo\nworld\n");
    expect(text(await call(client, "list_files", { path: "data" }))).toContain("notes.txt");
    const missing = await call(client, "read_file", { path: "nope.txt" });
    expect(missing.isError).toBe(true);

    const malformed = await call(client, "run_code", { code: 42 });
    expect(malformed.isError).toBe(true);
    expect(text(malformed)).toMatch(/invalid arguments/i);
    const unknownShape = await call(client, "write_file", { path: "x.txt" });
    expect(unknownShape.isError).toBe(true);
    // The session goes on, with its variables.
    expect(text(await call(client, "run_code", { code: "print(x + 1)" }))).toContain("43");
  });

  it("gives two sessions two sandboxes and deletes a session's sandbox when its client disconnects", async () => {
    const run = randomUUID();
    const [a, b] = [await open(run), await open(run)];
    await call(a, "run_command", { command: "echo a > who.txt" });
    await call(b, "run_command", { command: "echo b > who.txt" });
    expect(text(await call(a, "read_file", { path: "who.txt" }))).toBe("a\n");
    expect(text(await call(b, "read_file", { path: "who.txt" }))).toBe("b\n");
    expect(await sessionSandboxes(run)).toHaveLength(2);

    // A sandbox made with create_sandbox outlives the session.
    const made = await call(a, "create_sandbox", { labels: { ...TEST_LABELS, "mcp-kept": run } });
    const info = JSON.parse(text(made)) as { id: string; state: string };
    expect(info.state).toBe("running");
    expect(text(await call(a, "run_command", { command: "echo kept", sandbox: info.id }))).toContain("kept");

    await a.close();
    await expect.poll(async () => (await sessionSandboxes(run)).length, { timeout: 30_000 }).toBe(1);
    expect((await engine.get(info.id)).id).toBe(info.id);
    await (await engine.get(info.id)).delete();
    await b.close();
    await expect.poll(async () => (await sessionSandboxes(run)).length, { timeout: 30_000 }).toBe(0);
  });

  it("--print-config prints the clients' configuration", async () => {
    const all = await kiln(["mcp", "--print-config", "--local"]);
    expect(all.code).toBe(0);
    const parsed = JSON.parse(all.stdout);
    expect(parsed.claude).toEqual({ mcpServers: { kiln: { command: "npx", args: ["-y", "@kiln/cli", "mcp"] } } });
    expect(parsed.vscode.servers.kiln.type).toBe("stdio");
    const remote = await kiln(["mcp", "--print-config", "--client", "cursor"], {
      env: { KILN_URL: "http://127.0.0.1:7420", KILN_API_KEY: "kiln_0123456789abcdef" },
    });
    expect(JSON.parse(remote.stdout)).toEqual({
      mcpServers: {
        kiln: { url: "http://127.0.0.1:7420/mcp", headers: { Authorization: "Bearer kiln_0123456789abcdef" } },
      },
    });
  });
});
