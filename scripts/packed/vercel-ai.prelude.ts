// biome-ignore-all lint/correctness/noUnusedVariables: the README snippet appended after this prelude uses them
// What the vercel-ai README's snippet leaves to the reader: a model (the AI SDK's MockLanguageModelV4,
// one run_code call, then an answer) and a chat id.
import { MockLanguageModelV4 } from "ai/test";

// scripts/test-packed.sh names it, so it can delete the sandbox afterwards.
const chatId = process.env.KILN_PACKED_CHAT ?? `packed-${process.pid}`;
const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};
let turn = 0;
const model = new MockLanguageModelV4({
  doGenerate: async () =>
    turn++ === 0
      ? {
          content: [
            { type: "tool-call" as const, toolCallId: "c1", toolName: "run_code", input: '{"code":"print(6*7)"}' },
          ],
          finishReason: { unified: "tool-calls" as const, raw: "tool_calls" },
          usage,
          warnings: [],
        }
      : {
          content: [{ type: "text" as const, text: "42" }],
          finishReason: { unified: "stop" as const, raw: "stop" },
          usage,
          warnings: [],
        },
});
