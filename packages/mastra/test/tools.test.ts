// Mastra's real agent loop (Agent.generate) with a scripted model calls each Kiln tool against a
// real sandbox; the assertions read what the model received on its next call.
import type { Sandbox } from "@kiln/core";
import { Agent } from "@mastra/core/agent";
import { beforeAll, describe, expect, it } from "vitest";
import { createKilnTools } from "../src/index.ts";
import {
  type ReceivedToolResult,
  sandbox,
  scriptedModel,
  type Turn,
  testKiln,
  textOf,
  toolResultsSeen,
} from "./helpers.ts";

const kiln = testKiln();
let box: Sandbox;

beforeAll(async () => {
  box = await sandbox(kiln);
});

/** Runs one agent turn with `turns` scripted and returns the model (to read its prompts). */
async function run(turns: Turn[], tools = createKilnTools({ sandbox: box })) {
  const model = scriptedModel(turns);
  const agent = new Agent({ id: "analyst", name: "analyst", instructions: "Analyse data.", model, tools });
  const result = await agent.generate("Analyse the sales data.");
  return { model, result };
}

function only(results: ReceivedToolResult[]): ReceivedToolResult {
  expect(results).toHaveLength(1);
  return results[0] as ReceivedToolResult;
}

describe("the five tools in Mastra's agent loop", () => {
  it("write_file then read_file and list_files: the model reads the file back", async () => {
    const csv = "month,revenue\njan,120\nfeb,135\nmar,160\n";
    const { model, result } = await run([
      [{ tool: "write_file", input: { path: "data/sales.csv", content: csv } }],
      [{ tool: "read_file", input: { path: "data/sales.csv" } }],
      [{ tool: "list_files", input: { path: "data" } }],
      "The data has three months.",
    ]);
    expect(result.text).toBe("The data has three months.");
    expect(model.doGenerateCalls).toHaveLength(4);

    const written = only(toolResultsSeen(model, 1));
    expect(written.toolName).toBe("write_file");
    expect(written.output).toEqual({ type: "text", value: `Wrote ${csv.length} bytes to /workspace/data/sales.csv.` });

    const read = only(toolResultsSeen(model, 2));
    expect(read.output).toEqual({ type: "text", value: csv });

    const listed = textOf(only(toolResultsSeen(model, 3)));
    expect(listed).toContain("/workspace/data (1 entries):");
    expect(listed).toMatch(/\nsales\.csv {2}\d+ B$/);
    expect(await box.files.readText("data/sales.csv")).toBe(csv);
  });

  it("run_code: pandas computes, matplotlib's chart reaches the model as an image part", async () => {
    await box.files.write("sales.csv", "month,revenue\njan,120\nfeb,135\nmar,160\n");
    const code = [
      "import pandas as pd, matplotlib.pyplot as plt",
      "df = pd.read_csv('sales.csv')",
      "print('total', df.revenue.sum())",
      "df.plot(x='month', y='revenue', kind='bar')",
      "df.revenue.mean()",
    ].join("\n");
    const { model } = await run([[{ tool: "run_code", input: { code } }], "Revenue grew."]);

    const seen = only(toolResultsSeen(model, 1));
    expect(seen.toolName).toBe("run_code");
    expect(seen.output.type).toBe("content");
    const parts = seen.output.value as { type: string; text?: string; mediaType?: string; data?: unknown }[];
    expect(parts[0]?.type).toBe("text");
    expect(parts[0]?.text).toContain("stdout:\ntotal 415");
    expect(parts[0]?.text).toContain("result:\n138.33");
    expect(parts[0]?.text).toContain("[image 1: image/png, attached]");
    // AI SDK v7's image part: a file part with inline data, not base64 inside the text.
    const image = parts.find((p) => p.type === "file");
    expect(image?.mediaType).toBe("image/png");
    const data = (image?.data as { type: string; data: string } | undefined)?.data ?? "";
    expect(Buffer.from(data, "base64").subarray(1, 4).toString()).toBe("PNG");
    expect(parts[0]?.text).not.toContain(data.slice(0, 40));
  });

  it("run_code: state persists between calls, and a user-code error reaches the model as readable text", async () => {
    const { model, result } = await run([
      [{ tool: "run_code", input: { code: "rows = [1, 2, 3]" } }],
      [{ tool: "run_code", input: { code: "sum(rows) / len(missing_rows)" } }],
      [{ tool: "run_code", input: { code: "sum(rows)" } }],
      "Fixed it.",
    ]);
    expect(result.text).toBe("Fixed it.");

    const failed = textOf(only(toolResultsSeen(model, 2)));
    expect(failed).toContain("error: NameError: name 'missing_rows' is not defined");
    expect(failed).toContain("Traceback (most recent call last):");
    expect(failed).not.toMatch(/\u001b\[/);
    // The loop went on: the next cell ran in the same interpreter.
    expect(textOf(only(toolResultsSeen(model, 3)))).toBe("result:\n6");
  });

  it("run_command: exit code, stdout and stderr; a failing command is a result, not a crash", async () => {
    const { model } = await run([
      [{ tool: "run_command", input: { command: "echo hello from $(whoami) in $(pwd)" } }],
      [{ tool: "run_command", input: { command: "ls /nope" } }],
      "ok",
    ]);
    expect(textOf(only(toolResultsSeen(model, 1)))).toMatch(/^exit code: 0\n\nstdout:\nhello from \S+ in \/workspace$/);
    const failed = textOf(only(toolResultsSeen(model, 2)));
    expect(failed).toMatch(/^exit code: 2\n\nstderr:\n.*No such file or directory/s);
  });

  it("mistakes the model can fix come back as text: a missing file, a directory, a bad path", async () => {
    const { model } = await run([
      [
        { tool: "read_file", input: { path: "no/such.csv" } },
        { tool: "read_file", input: { path: "." } },
        { tool: "write_file", input: { path: "../etc/x", content: "x" } },
        { tool: "list_files", input: {} },
      ],
      "ok",
    ]);
    const [missing, directory, outside, listing] = toolResultsSeen(model, 1).map(textOf);
    expect(missing).toBe("Error: No such file or directory in the sandbox: /workspace/no/such.csv.");
    expect(directory).toBe("/workspace is a directory: use list_files to see what is in it.");
    // "../etc/x" resolves to /etc/x (core's one path resolution), where the sandbox user may not write.
    expect(outside).toMatch(
      /^Error: Permission denied: .*The sandbox user may not write there: use \/workspace or \/tmp\.$/,
    );
    expect(listing).toMatch(/^\/workspace \(\d+ entries\):\ndata\//);
  });

  it("long output is cut with a note, and a timeout says so", async () => {
    const tools = createKilnTools({ sandbox: box, maxOutputChars: 200, timeoutMs: 1_000 });
    const { model } = await run(
      [
        [{ tool: "run_command", input: { command: "seq 1 5000" } }],
        [{ tool: "run_code", input: { code: "import time\ntime.sleep(5)" } }],
        "ok",
      ],
      tools,
    );
    const long = textOf(only(toolResultsSeen(model, 1)));
    expect(long).toMatch(/^exit code: 0\n\nstdout:\n1\n2\n/);
    expect(long).toMatch(/\[\.\.\. \d+ characters cut here: output is limited to 200 characters per stream;/);
    expect(long).toMatch(/4999\n5000$/);
    expect(long.length).toBeLessThan(400);
    expect(textOf(only(toolResultsSeen(model, 2)))).toContain(
      "The code was stopped: it ran longer than the 1 s limit.",
    );
  });
});
