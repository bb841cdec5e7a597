// A LangChain data-analysis agent whose code runs in a Kiln sandbox: it writes a CSV, computes
// with pandas and draws a chart, which comes back to the model as an image.
//   node examples/langchain.ts
// Runs with LangChain's scripted fake model by default (no API key, no network). With
// ANTHROPIC_API_KEY or OPENAI_API_KEY set and @langchain/anthropic or @langchain/openai installed,
// a real model drives the same tools (KILN_MODEL picks another, e.g. "openai:gpt-4.1-mini").
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { createKilnTools } from "@kiln/langchain";
import { AIMessage, type BaseMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";

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

/** One model turn that calls a tool. */
const call = (name: string, args: Record<string, string>, id: string) =>
  new AIMessage({ content: "", tool_calls: [{ name, args, id, type: "tool_call" }] });

/** The scripted model: the tool calls a capable model would make for TASK, then an answer. */
function scriptedModel() {
  return fakeModel()
    .respond(call("write_file", { path: "data/sales.csv", content: CSV }, "call-1"))
    .respond(call("run_code", { code: ANALYSIS }, "call-2"))
    .respond(call("run_code", { code: CHART }, "call-3"))
    .respond((messages) => {
      const analysis = messages.filter((m) => ToolMessage.isInstance(m)).at(-2);
      const summary = String(analysis?.content ?? "").match(/total: .*/)?.[0] ?? "see above";
      return new AIMessage(
        `Revenue for January to June: ${summary}. The chart shows steady growth after a dip in April.`,
      );
    });
}

/** A real chat model when a provider key is set and its LangChain package is installed. */
function realModel(): string | undefined {
  const provider = process.env.ANTHROPIC_API_KEY
    ? { pkg: "@langchain/anthropic", model: "anthropic:claude-sonnet-4-5" }
    : process.env.OPENAI_API_KEY
      ? { pkg: "@langchain/openai", model: "openai:gpt-4.1" }
      : undefined;
  if (!provider) {
    console.log("Using the scripted fake model. Set ANTHROPIC_API_KEY or OPENAI_API_KEY to use a real one.\n");
    return undefined;
  }
  try {
    import.meta.resolve(provider.pkg);
  } catch {
    console.log(
      `Using the scripted fake model: install ${provider.pkg} (pnpm add ${provider.pkg}) to use a real one.\n`,
    );
    return undefined;
  }
  return process.env.KILN_MODEL ?? provider.model;
}

async function show(message: BaseMessage, imageCount: { n: number }): Promise<void> {
  if (AIMessage.isInstance(message)) {
    for (const call of message.tool_calls ?? []) console.log(`model -> ${call.name}(${JSON.stringify(call.args)})\n`);
    if (message.text) console.log(`model: ${message.text}\n`);
  } else if (ToolMessage.isInstance(message)) {
    const blocks = typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
    for (const block of blocks) {
      if (block.type === "text") console.log(`${message.name} -> ${String(block.text).replace(/\n/g, "\n    ")}`);
      if (block.type === "image" && typeof block.data === "string") {
        const file = join(tmpdir(), `kiln-langchain-chart-${++imageCount.n}.png`);
        await writeFile(file, Buffer.from(block.data, "base64"));
        console.log(`    (the model received this chart as an image; saved to ${file})`);
      }
    }
    console.log();
  }
}

await using kiln = new Kiln();
await kiln.images.ensure();
// One sandbox per LangGraph thread, created on the first tool call; deleted by close() here
// because this script is done with it (the default, "stop", keeps a conversation's files).
await using tools = createKilnTools({ kiln, release: "delete" });

const model = realModel() ?? scriptedModel();
const agent = createAgent({
  model,
  tools,
  systemPrompt: "You are a data analyst. Use the sandbox tools to do the work, then answer in two sentences.",
});

console.log(`user: ${TASK}\n`);
const started = performance.now();
const result = await agent.invoke(
  { messages: [new HumanMessage(TASK)] },
  { configurable: { thread_id: `example-${process.pid}` }, recursionLimit: 25 },
);
const imageCount = { n: 0 };
for (const message of result.messages.slice(1)) await show(message, imageCount);
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
