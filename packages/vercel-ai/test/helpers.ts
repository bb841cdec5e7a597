// Fixtures: real sandboxes (labelled, deleted after the file, id printed on failure) and a
// scripted AI SDK mock model that records the prompt of every call.
import { type CreateSandboxOptions, Kiln, type Sandbox } from "@kiln/core";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import { afterAll, inject, onTestFailed } from "vitest";

import { TEST_LABELS } from "./labels.ts";

export { TEST_LABELS };

export function testKiln(): Kiln {
  const kiln = newKiln();
  afterAll(() => kiln.close());
  return kiln;
}

/**
 * A Kiln of this run's mode, closed by the caller (testKiln() closes its own): in remote mode
 * (tests/remote/vitest.config.ts, KILN_TEST_REMOTE=1) one more client of the run's Kiln server.
 */
export function newKiln(): Kiln {
  const server = process.env.KILN_TEST_REMOTE === "1" ? inject("kilnServer") : undefined;
  return server ? new Kiln(server) : new Kiln({ image: inject("runtimeImage") });
}

const made: Sandbox[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map((s) => s.delete().catch(() => {})));
});

/** Deletes this sandbox after the file's tests. */
export function track(sandbox: Sandbox): Sandbox {
  made.push(sandbox);
  try {
    onTestFailed(() => console.error(`sandbox under test: ${sandbox.id}${sandbox.name ? ` (${sandbox.name})` : ""}`));
  } catch {
    // In a beforeAll hook there is no test to attach the message to.
  }
  return sandbox;
}

export async function testSandbox(kiln: Kiln, options: CreateSandboxOptions = {}): Promise<Sandbox> {
  return track(await kiln.create({ ...options, labels: { ...TEST_LABELS, ...options.labels } }));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

type GenerateResult = Awaited<ReturnType<MockLanguageModelV4["doGenerate"]>>;
type Prompt = MockLanguageModelV4["doGenerateCalls"][number]["prompt"];

export interface ScriptedCall {
  tool: string;
  input: Record<string, unknown>;
}

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

function toolCalls(step: ScriptedCall[], turn: number) {
  return step.map((call, i) => ({
    type: "tool-call" as const,
    toolCallId: `call-${turn}-${i}`,
    toolName: call.tool,
    input: JSON.stringify(call.input),
  }));
}

/**
 * The AI SDK's own mock model, answering from a script: each step is either tool calls
 * (one model turn calling those tools) or a final text.
 */
export function scriptedModel(steps: (ScriptedCall[] | string)[]): MockLanguageModelV4 {
  let turn = 0;
  return new MockLanguageModelV4({
    doGenerate: async (): Promise<GenerateResult> => {
      const step = steps[turn] ?? "done";
      turn += 1;
      if (typeof step === "string")
        return {
          content: [{ type: "text", text: step }],
          finishReason: { unified: "stop", raw: "stop" },
          usage,
          warnings: [],
        };
      return {
        content: toolCalls(step, turn),
        finishReason: { unified: "tool-calls", raw: "tool_calls" },
        usage,
        warnings: [],
      };
    },
  });
}

type StreamPart =
  Awaited<ReturnType<MockLanguageModelV4["doStream"]>>["stream"] extends ReadableStream<infer P> ? P : never;

/** The same script, answered as a stream (for streamText). */
export function scriptedStreamModel(steps: (ScriptedCall[] | string)[]): MockLanguageModelV4 {
  let turn = 0;
  return new MockLanguageModelV4({
    doStream: async () => {
      const step = steps[turn] ?? "done";
      turn += 1;
      const parts: StreamPart[] = [{ type: "stream-start", warnings: [] }];
      if (typeof step === "string") {
        parts.push(
          { type: "text-start", id: "t" },
          { type: "text-delta", id: "t", delta: step },
          { type: "text-end", id: "t" },
        );
      } else {
        parts.push(...toolCalls(step, turn));
      }
      const unified = typeof step === "string" ? "stop" : "tool-calls";
      parts.push({ type: "finish", finishReason: { unified, raw: undefined }, usage });
      return { stream: convertArrayToReadableStream(parts) };
    },
  });
}

export type ToolResultOutput = Extract<
  Extract<Prompt[number], { role: "tool" }>["content"][number],
  { type: "tool-result" }
>["output"];

/** The tool results the model received at the start of its call number `call` (0-based). */
export function toolResultsSeen(model: MockLanguageModelV4, call: number): Map<string, ToolResultOutput> {
  const calls = model.doGenerateCalls.length > 0 ? model.doGenerateCalls : model.doStreamCalls;
  const prompt = calls[call]?.prompt;
  if (!prompt) throw new Error(`the model was called ${calls.length} times, not ${call + 1}`);
  const last = prompt[prompt.length - 1];
  if (last?.role !== "tool") throw new Error(`call ${call} did not start with tool results`);
  const seen = new Map<string, ToolResultOutput>();
  for (const part of last.content) if (part.type === "tool-result") seen.set(part.toolName, part.output);
  return seen;
}

/** The text of a tool result (a text output, or the text parts of a content output). */
export function textOf(output: ToolResultOutput | undefined): string {
  if (!output) throw new Error("no tool result");
  if (output.type === "text" || output.type === "error-text") return output.value;
  if (output.type === "content")
    return output.value
      .map((p) => (p.type === "text" ? p.text : ""))
      .filter(Boolean)
      .join("\n");
  return JSON.stringify(output);
}

declare module "vitest" {
  export interface ProvidedContext {
    /** Set only in remote mode (tests/remote/vitest.config.ts): the server to test against. */
    kilnServer?: { url: string; apiKey: string };
  }
}
