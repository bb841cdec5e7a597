// The AI SDK model the vercel-ai and mastra preludes give their README snippets: the AI SDK's
// MockLanguageModelV4, scripted to call run_code once (print(6*7)), then answer "42". Its
// `./scripted-model.ts` import resolves because scripts/test-packed.sh and the docs sample runner
// (tests/docs/runner.ts) copy this file beside the snippet they run.
import { MockLanguageModelV4 } from "ai/test";

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

export function scriptedModel(): MockLanguageModelV4 {
  let turn = 0;
  return new MockLanguageModelV4({
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
}

/** The chat's id: scripts/test-packed.sh names it, so it can delete the sandbox afterwards. */
export const chatId = process.env.KILN_PACKED_CHAT ?? `packed-${process.pid}`;
