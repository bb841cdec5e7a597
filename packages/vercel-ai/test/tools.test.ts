// kilnTools() in the AI SDK's real loop (generateText with stopWhen), driven by the SDK's own
// mock model, against a real sandbox. Each assertion is on what the model receives next.
import { generateText, stepCountIs, streamText } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeKilnTools, getKilnSandbox, type KilnToolSet, kilnTools } from "../src/index.ts";
import {
  scriptedModel,
  scriptedStreamModel,
  TEST_LABELS,
  testKiln,
  testSandbox,
  textOf,
  toolResultsSeen,
  track,
} from "./helpers.ts";

const kiln = testKiln();

const CSV = "month,revenue\njan,120\nfeb,135\nmar,160\n";
const ANALYSIS = `
import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv("data/sales.csv")
total = int(df.revenue.sum())
print(f"total revenue: {total}")
with open("data/summary.txt", "w") as f:
    f.write(f"total={total}\\n")
df.plot(x="month", y="revenue", kind="bar")
plt.show()
df.revenue.mean()
`;

describe("the five tools in generateText's loop", () => {
  let tools: KilnToolSet;
  beforeAll(() => {
    tools = kilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS } });
  });
  afterAll(() => disposeKilnTools(tools));

  it("writes, computes, charts, reads, lists, and gets a user-code error back as text", async () => {
    const model = scriptedModel([
      [{ tool: "write_file", input: { path: "data/sales.csv", content: CSV } }],
      [{ tool: "run_code", input: { code: ANALYSIS } }],
      [{ tool: "run_command", input: { command: "wc -l data/sales.csv && cat data/summary.txt" } }],
      [
        { tool: "read_file", input: { path: "data/summary.txt" } },
        { tool: "list_files", input: { path: "data" } },
      ],
      [{ tool: "run_code", input: { code: 'df["profit"].sum()' } }],
      "Revenue was 415 in total.",
    ]);
    const result = await generateText({
      model,
      tools,
      stopWhen: stepCountIs(10),
      prompt: "Analyse the sales data",
    });
    track(await getKilnSandbox(tools));

    // The loop ran to the end: the user-code error did not stop it.
    expect(result.text).toBe("Revenue was 415 in total.");
    expect(model.doGenerateCalls).toHaveLength(6);

    // The model is offered exactly the five tools, with their input schemas.
    const offered = model.doGenerateCalls[0]?.tools?.map((t) => t.name).sort();
    expect(offered).toEqual(["list_files", "read_file", "run_code", "run_command", "write_file"]);

    expect(textOf(toolResultsSeen(model, 1).get("write_file"))).toBe(
      `Wrote ${CSV.length} bytes to /workspace/data/sales.csv.`,
    );

    // The chart arrives as an image part, not as base64 text.
    const analysis = toolResultsSeen(model, 2).get("run_code");
    expect(analysis?.type).toBe("content");
    if (analysis?.type !== "content") throw new Error("unreachable");
    const [text, ...images] = analysis.value;
    expect(text?.type === "text" && text.text).toContain("total revenue: 415");
    expect(text?.type === "text" && text.text).toContain("result:\n138.33");
    expect(text?.type === "text" && text.text).toContain("[image 1: image/png, attached]");
    expect(textOf(analysis)).not.toContain("iVBOR"); // no base64 PNG in the text
    expect(images).toHaveLength(1);
    const image = images[0];
    if (image?.type !== "file" || image.data.type !== "data") throw new Error(`not an image part: ${image?.type}`);
    expect(image.mediaType).toBe("image/png");
    const png = Buffer.from(image.data.data as string, "base64");
    expect(png.subarray(1, 4).toString()).toBe("PNG");

    const command = textOf(toolResultsSeen(model, 3).get("run_command"));
    expect(command).toMatch(/^exit code: 0\n\nstdout:\n4 data\/sales.csv\ntotal=415$/);

    const seen = toolResultsSeen(model, 4);
    expect(textOf(seen.get("read_file"))).toBe("total=415\n");
    const listing = textOf(seen.get("list_files"));
    expect(listing).toContain("/workspace/data (2 entries):");
    expect(listing).toMatch(/sales\.csv {2}\d+ B/);
    expect(listing).toContain("summary.txt");

    // The user's code failed: the model reads the error and the traceback, as a normal result.
    const failure = toolResultsSeen(model, 5).get("run_code");
    expect(failure?.type).toBe("text");
    const failureText = textOf(failure);
    expect(failureText).toContain("error: KeyError: 'profit'");
    expect(failureText).toMatch(/traceback:\n[\s\S]*KeyError/);
  });

  it("returns a failing command, a JavaScript error and a wrong path as readable text", async () => {
    const model = scriptedModel([
      [
        { tool: "run_command", input: { command: "ls /nope; exit 3" } },
        { tool: "run_code", input: { code: "const x = null; x.y", language: "javascript" } },
        { tool: "read_file", input: { path: "missing.txt" } },
        { tool: "list_files", input: { path: "data/sales.csv" } },
      ],
      "ok",
    ]);
    await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "go" });
    const seen = toolResultsSeen(model, 1);
    expect(textOf(seen.get("run_command"))).toMatch(/^exit code: 3\n\nstderr:\nls: cannot access '\/nope'/);
    expect(textOf(seen.get("run_code"))).toContain("error: TypeError: Cannot read properties of null");
    expect(textOf(seen.get("read_file"))).toBe(
      "Error: No such file or directory in the sandbox: /workspace/missing.txt.",
    );
    expect(textOf(seen.get("list_files"))).toContain("Not a directory");
  });

  it("cuts long output with a note, and reads an image file as an image", async () => {
    const model = scriptedModel([
      [
        { tool: "run_command", input: { command: "python3 -c \"print('x' * 50000)\"" } },
        {
          tool: "run_code",
          input: { code: "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('line.png')" },
        },
      ],
      [{ tool: "read_file", input: { path: "line.png" } }],
      "ok",
    ]);
    await generateText({ model, tools, stopWhen: stepCountIs(4), prompt: "go" });
    const long = textOf(toolResultsSeen(model, 1).get("run_command"));
    expect(long).toContain("characters cut here: output is limited to 12000 characters per stream");
    expect(long.length).toBeLessThan(12_500);
    const read = toolResultsSeen(model, 2).get("read_file");
    expect(read?.type === "content" && read.value.map((p) => p.type)).toEqual(["text", "file"]);
  });
});

describe("in streamText", () => {
  it("sends the chart to the model as an image part, the same way", async () => {
    const sandbox = await testSandbox(kiln);
    const model = scriptedStreamModel([
      [{ tool: "run_code", input: { code: "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.show()" } }],
      "a line chart",
    ]);
    const result = streamText({ model, tools: kilnTools({ sandbox }), stopWhen: stepCountIs(3), prompt: "chart" });
    expect(await result.text).toBe("a line chart");
    const output = toolResultsSeen(model, 1).get("run_code");
    expect(output?.type === "content" && output.value.map((p) => (p.type === "file" ? p.mediaType : p.type))).toEqual([
      "text",
      "image/png",
    ]);
  });
});

describe("limits", () => {
  it("tells the model about a timeout and keeps working", async () => {
    const sandbox = await testSandbox(kiln);
    const tools = kilnTools({ sandbox, timeoutMs: 1_500 });
    expect(tools.run_code.description).toContain("1.5 s at most");
    const model = scriptedModel([
      [{ tool: "run_code", input: { code: "import time\ntime.sleep(30)" } }],
      [{ tool: "run_code", input: { code: "6 * 7" } }],
      "ok",
    ]);
    await generateText({ model, tools, stopWhen: stepCountIs(4), prompt: "go" });
    expect(textOf(toolResultsSeen(model, 1).get("run_code"))).toContain("ran longer than the 1.5 s limit");
    expect(textOf(toolResultsSeen(model, 2).get("run_code"))).toBe("result:\n42");
  });
});
