// A Vercel AI SDK data-analysis agent whose code runs in a Kiln sandbox: it writes a CSV,
// computes with pandas and draws a chart, which comes back to the model as an image.
//   node examples/vercel-ai.ts
// Runs with the AI SDK's scripted mock model by default (no API key, no network). With
// OPENAI_API_KEY set and @ai-sdk/openai installed, a real model drives the same tools
// (KILN_MODEL picks the model, default "gpt-4.1-mini").
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { kilnTools } from "@kiln/vercel-ai";
import { type LanguageModel, stepCountIs, ToolLoopAgent } from "ai";
import { MockLanguageModelV4 } from "ai/test";

const TASK =
  "Here is monthly revenue: jan 120, feb 135, mar 160, apr 150, may 185, jun 210. Save it as data/sales.csv, " +
  "compute the total and the average month-over-month growth with pandas, and draw a bar chart of it.";

const CSV = "month,revenue\njan,120\nfeb,135\nmar,160\napr,150\nmay,185\njun,210\n";
const ANALYSIS = `import pandas as pd
df = pd.read_csv("data/sales.csv")
df["growth_pct"] = df.revenue.pct_change() * 100
print(df.to_string(index=False))
print(f"total: {df.revenue.sum()}, average growth: {df.growth_pct.mean():.1f}%")`;
const CHART = `import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(df.month, df.revenue, color="#d9622b")
ax.set_title("Revenue by month")
plt.show()`;

type Generate = Awaited<ReturnType<MockLanguageModelV4["doGenerate"]>>;
const usage = {
  inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 0, text: 0, reasoning: undefined },
};
const callTool = (toolName: string, input: Record<string, string>): Generate => ({
  content: [{ type: "tool-call", toolCallId: `call-${toolName}`, toolName, input: JSON.stringify(input) }],
  finishReason: { unified: "tool-calls", raw: undefined },
  usage,
  warnings: [],
});

/** The scripted model: the tool calls a capable model would make for TASK, then an answer. */
function scriptedModel(): LanguageModel {
  const script = [
    callTool("write_file", { path: "data/sales.csv", content: CSV }),
    callTool("run_code", { code: ANALYSIS }),
    callTool("run_code", { code: CHART }),
  ];
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const next = script.shift();
      if (next) return next;
      // The answer quotes what the analysis printed, as read from the conversation.
      const printed = JSON.stringify(prompt).match(/total: \d+, average growth: [\d.]+%/)?.[0] ?? "see above";
      const text = `Done. ${printed}. The bar chart shows revenue rising from 120 in January to 210 in June, with a dip in April.`;
      return {
        content: [{ type: "text", text }],
        finishReason: { unified: "stop", raw: undefined },
        usage,
        warnings: [],
      };
    },
  });
}

/** A real model when an API key and the provider package are there; else the scripted one. */
async function pickModel(): Promise<LanguageModel> {
  if (!process.env.OPENAI_API_KEY) {
    console.log("(scripted mock model: set OPENAI_API_KEY and install @ai-sdk/openai to use a real model)\n");
    return scriptedModel();
  }
  const provider = "@ai-sdk/openai"; // not a dependency: imported only when installed
  try {
    const { openai } = await import(provider);
    return openai(process.env.KILN_MODEL ?? "gpt-4.1-mini");
  } catch {
    console.log("(OPENAI_API_KEY is set but @ai-sdk/openai is not installed: using the scripted mock model)\n");
    return scriptedModel();
  }
}

await using kiln = new Kiln();
await kiln.images.ensure();
// The sandbox is made on the first tool call and deleted when `tools` is disposed.
await using tools = kilnTools({ kiln, sandboxOptions: { labels: { example: "vercel-ai" } } });

const agent = new ToolLoopAgent({
  model: await pickModel(),
  instructions: "You are a data analyst. Use the sandbox tools to do the work; answer briefly.",
  tools,
  stopWhen: stepCountIs(10),
});

const result = await agent.generate({ prompt: TASK });

let charts = 0;
for (const step of result.steps) {
  for (const call of step.toolCalls) console.log(`> ${call.toolName} ${JSON.stringify(call.input).slice(0, 100)}`);
  for (const toolResult of step.toolResults) {
    const output = toolResult.output as string | { text: string; images: { mediaType: string; data: string }[] };
    const text = typeof output === "string" ? output : output.text;
    console.log(text.replace(/^/gm, "  "));
    for (const image of typeof output === "string" ? [] : output.images) {
      charts += 1;
      const file = join(tmpdir(), `kiln-vercel-ai-chart-${charts}.png`);
      await writeFile(file, Buffer.from(image.data, "base64"));
      console.log(`  (the model received this chart as an image; saved a copy to ${file})`);
    }
  }
}
console.log(`\n${result.text}`);
