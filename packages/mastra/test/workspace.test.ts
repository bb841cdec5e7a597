// A Mastra Agent with a Workspace on KilnSandbox + KilnFilesystem: Mastra's own workspace tools
// (write_file, execute_command, read_file, background processes) run in a real Kiln sandbox.
import { Agent } from "@mastra/core/agent";
import { WORKSPACE_TOOLS, Workspace } from "@mastra/core/workspace";
import { afterAll, describe, expect, it } from "vitest";
import { KilnFilesystem, KilnSandbox, sandboxNameFor } from "../src/index.ts";
import {
  cleanUpNamed,
  type ReceivedToolResult,
  scriptedModel,
  TEST_LABELS,
  testKiln,
  textOf,
  toolResultsSeen,
  uniqueName,
} from "./helpers.ts";

const kiln = testKiln();
const id = uniqueName("workspace");
cleanUpNamed(kiln, sandboxNameFor(id));
const sandbox = new KilnSandbox({ kiln, id, sandboxOptions: { labels: TEST_LABELS } });
const workspace = new Workspace({ sandbox, filesystem: new KilnFilesystem({ sandbox }) });
afterAll(() => workspace.destroy());

const { FILESYSTEM, SANDBOX } = WORKSPACE_TOOLS;

const script = [
  "import pandas as pd, matplotlib",
  "matplotlib.use('Agg')",
  "import matplotlib.pyplot as plt",
  "df = pd.DataFrame({'month': ['jan', 'feb', 'mar'], 'revenue': [120, 135, 160]})",
  "df.plot(x='month', y='revenue').get_figure().savefig('chart.png')",
  "print('total', df.revenue.sum())",
].join("\n");

describe("Mastra workspace tools on Kiln", () => {
  it("write_file, execute_command and read_file run in the sandbox; the chart comes back as an image", async () => {
    const model = scriptedModel([
      [{ tool: FILESYSTEM.WRITE_FILE, input: { path: "analyze.py", content: script } }],
      [{ tool: SANDBOX.EXECUTE_COMMAND, input: { command: "python3 analyze.py && ls" } }],
      [{ tool: FILESYSTEM.READ_FILE, input: { path: "chart.png" } }],
      "Revenue totals 415.",
    ]);
    const agent = new Agent({ id: "coder", name: "coder", instructions: "Use the workspace.", model, workspace });
    const result = await agent.generate("Chart the revenue.");
    expect(result.text).toBe("Revenue totals 415.");

    const offered = (model.doGenerateCalls[0]?.tools ?? []).map((t) => t.name);
    expect(offered).toEqual(
      expect.arrayContaining([FILESYSTEM.WRITE_FILE, SANDBOX.EXECUTE_COMMAND, FILESYSTEM.READ_FILE]),
    );

    const [written] = toolResultsSeen(model, 1);
    expect(written?.toolName).toBe(FILESYSTEM.WRITE_FILE);
    const [ran] = toolResultsSeen(model, 2);
    expect(textOf(ran as ReceivedToolResult)).toMatch(/total 415[\s\S]*analyze\.py[\s\S]*chart\.png/);

    const [read] = toolResultsSeen(model, 3);
    const parts = (read as ReceivedToolResult).output.value as { type: string; mediaType?: string; data?: unknown }[];
    const image = parts.find((p) => p.type === "file");
    expect(image?.mediaType).toBe("image/png");
    // The image the model saw is the file in the container.
    const onDisk = await (await sandbox.getSandbox()).files.read("chart.png");
    expect((image?.data as { data: string } | undefined)?.data).toBe(Buffer.from(onDisk).toString("base64"));
  });

  it("background processes: start, read output, kill", async () => {
    const model = scriptedModel([
      [{ tool: SANDBOX.EXECUTE_COMMAND, input: { command: "echo started; sleep 60", background: true } }],
      "ok",
    ]);
    const agent = new Agent({ id: "bg", name: "bg", instructions: "x", model, workspace });
    await agent.generate("start a server");
    const started = textOf(toolResultsSeen(model, 1)[0] as ReceivedToolResult);
    const pid = /PID: (\S+)\)/.exec(started)?.[1];
    expect(pid).toBeDefined();

    const handle = await sandbox.processes.get(pid as string);
    await expect.poll(() => handle?.stdout, { timeout: 5_000 }).toBe("started\n");
    expect(await sandbox.processes.kill(pid as string)).toBe(true);
  });
});
