// A Mastra data-analysis agent whose code runs in a Kiln sandbox: it saves a CSV, computes with
// pandas and draws a chart, which reaches the model as an image.
//   node examples/mastra.ts
// By default a scripted mock model (MockLanguageModelV4 from `ai/test`) drives the agent: no
// API key, no network. With OPENAI_API_KEY set, Mastra's model router calls a real model
// (KILN_MODEL picks it, default "openai/gpt-4.1-mini"; no provider package needed).
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { createKilnTools, type KilnToolOutput, sandboxNameFor } from "@kiln/mastra";
import { Agent } from "@mastra/core/agent";
import type { MastraModelConfig } from "@mastra/core/llm";
import { MockLanguageModelV4 } from "ai/test";

const TASK =
  "Monthly revenue: jan 120, feb 135, mar 160, apr 150, may 185, jun 210. Save it to data/sales.csv, " +
  "use pandas for the total and the average month-over-month growth, and draw a bar chart.";

const CSV = "month,revenue\njan,120\nfeb,135\nmar,160\napr,150\nmay,185\njun,210\n";
const ANALYSIS = `import pandas as pd
df = pd.read_csv("data/sales.csv")
df["growth_pct"] = df.revenue.pct_change() * 100
print(df.to_string(index=False))
print(f"total {df.revenue.sum()}, mean growth {df.growth_pct.mean():.1f}%")`;
const CHART = `import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(df.month, df.revenue, color="#c8553d")
ax.set_title("Revenue by month")`;

/** The tool calls a capable model would make for TASK, one per turn, then its answer. */
function scriptedModel() {
  const turns: [string, Record<string, string>][] = [
    ["write_file", { path: "data/sales.csv", content: CSV }],
    ["run_code", { code: ANALYSIS }],
    ["run_code", { code: CHART }],
  ];
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 0, text: 0, reasoning: undefined },
  };
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const turn = turns.shift();
      if (turn) {
        const [toolName, input] = turn;
        return {
          content: [{ type: "tool-call", toolCallId: `call-${turns.length}`, toolName, input: JSON.stringify(input) }],
          finishReason: { unified: "tool-calls", raw: undefined },
          usage,
          warnings: [],
        };
      }
      // The answer quotes what pandas printed, read back from the conversation.
      const figures = JSON.stringify(prompt).match(/total \d+, mean growth [\d.]+%/)?.[0] ?? "see above";
      const text = `Revenue: ${figures}. The chart shows a steady climb from 120 to 210, with one dip in April.`;
      return {
        content: [{ type: "text", text }],
        finishReason: { unified: "stop", raw: undefined },
        usage,
        warnings: [],
      };
    },
  });
}

function pickModel(): MastraModelConfig {
  if (process.env.OPENAI_API_KEY) return process.env.KILN_MODEL ?? "openai/gpt-4.1-mini";
  console.log("(scripted mock model; set OPENAI_API_KEY to drive the agent with a real model)\n");
  // `ai/test` may be a newer AI SDK 7 than the one Mastra's types were built against: same runtime shape.
  return scriptedModel() as unknown as MastraModelConfig;
}

await using kiln = new Kiln();
await kiln.images.ensure();

// One sandbox per Mastra thread, made on the first tool call as "mastra-<thread>".
const thread = `example-${process.pid}`;
const tools = createKilnTools({ kiln, sandboxOptions: { labels: { example: "mastra" } } });

const agent = new Agent({
  id: "analyst",
  name: "Data analyst",
  instructions: "You are a data analyst. Do the work with the sandbox tools, then answer in two sentences.",
  model: pickModel(),
  tools,
});

try {
  const result = await agent.generate(TASK, { memory: { thread, resource: "example-user" }, maxSteps: 10 });
  let charts = 0;
  for (const step of result.steps) {
    for (const { payload } of step.toolResults) {
      const output = payload.result as KilnToolOutput;
      console.log(`> ${payload.toolName} ${JSON.stringify(payload.args).slice(0, 90)}`);
      console.log(output.text.replace(/^/gm, "  "));
      for (const image of output.images ?? []) {
        const file = join(tmpdir(), `kiln-mastra-chart-${++charts}.png`);
        await writeFile(file, Buffer.from(image.data, "base64"));
        console.log(`  (the model saw this chart as an image; a copy is at ${file})`);
      }
    }
  }
  console.log(`\n${result.text}`);
} finally {
  // Disposing stops the thread's sandbox (the conversation could resume later); this example
  // deletes it so nothing is left behind.
  await tools[Symbol.asyncDispose]();
  await (await kiln.get(sandboxNameFor(thread))).delete();
}
