// Fixtures: real Kiln sandboxes (labelled, deleted after the file's tests, id printed on
// failure) and a scripted AI SDK model that records every prompt Mastra sends it.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { type CreateSandboxOptions, Kiln, type Sandbox } from "@kiln/core";
import { MockLanguageModelV4 } from "ai/test";
import { afterAll, inject, onTestFailed } from "vitest";

// The value names this checkout: another checkout's run beside this one keeps its sandboxes.
const checkout = createHash("sha256")
  .update(resolve(import.meta.dirname, "../../.."))
  .digest("hex")
  .slice(0, 10);
export const TEST_LABELS = { "test-run": `kiln-${checkout}` };

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
const named: { kiln: Kiln; name: string }[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map((s) => s.delete().catch(() => {})));
  await Promise.all(
    named.splice(0).map(async ({ kiln, name }) => {
      const sandbox = await kiln.get(name).catch(() => undefined);
      await sandbox?.delete().catch(() => {});
    }),
  );
});

function reportOnFailure(what: string): void {
  try {
    onTestFailed(() => console.error(`sandbox under test: ${what}`));
  } catch {
    // Outside a test (in a beforeAll hook) there is no test to attach the message to.
  }
}

/** A sandbox deleted after the file's tests. */
export async function sandbox(kiln: Kiln, options: CreateSandboxOptions = {}): Promise<Sandbox> {
  const created = await kiln.create({ ...options, labels: { ...TEST_LABELS, ...options.labels } });
  made.push(created);
  reportOnFailure(created.id);
  return created;
}

/** Deletes the sandbox named `name` (if the code under test made one) after the file's tests. */
export function cleanUpNamed(kiln: Kiln, name: string): void {
  named.push({ kiln, name });
  reportOnFailure(name);
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

// --- scripted model ---------------------------------------------------------------------------

export interface ToolCall {
  tool: string;
  input: Record<string, unknown>;
}

/** One model turn: tool calls to make, or a final text. */
export type Turn = ToolCall[] | string;

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
};

/**
 * An AI SDK model (MockLanguageModelV4 from `ai/test`) that plays `turns` in order and keeps
 * every prompt it is given, so a test reads exactly what the agent loop sent back.
 */
export function scriptedModel(turns: Turn[]) {
  let next = 0;
  let callId = 0;
  const model = new MockLanguageModelV4({
    doGenerate: async () => {
      const turn = turns[next++] ?? "done";
      if (typeof turn === "string") {
        return {
          content: [{ type: "text", text: turn }],
          finishReason: { unified: "stop", raw: "stop" },
          usage,
          warnings: [],
        };
      }
      return {
        content: turn.map((call) => ({
          type: "tool-call" as const,
          toolCallId: `call-${++callId}`,
          toolName: call.tool,
          input: JSON.stringify(call.input),
        })),
        finishReason: { unified: "tool-calls", raw: "tool_calls" },
        usage,
        warnings: [],
      };
    },
  });
  return model;
}

/** A tool result part as the model receives it (AI SDK v7 prompt). */
export interface ReceivedToolResult {
  toolName: string;
  output: { type: string; value: unknown };
}

/** The tool results in the prompt of the model's `callIndex`-th call (0-based), in order. */
export function toolResultsSeen(model: MockLanguageModelV4, callIndex: number): ReceivedToolResult[] {
  const call = model.doGenerateCalls[callIndex];
  if (!call) throw new Error(`the model was called ${model.doGenerateCalls.length} times, not ${callIndex + 1}`);
  const last = call.prompt.at(-1);
  if (last?.role !== "tool") throw new Error(`call ${callIndex} did not end with tool results`);
  return last.content.filter((p) => p.type === "tool-result") as unknown as ReceivedToolResult[];
}

/** The text of a tool result (text output, or the text parts of content output). */
export function textOf(result: ReceivedToolResult): string {
  const { output } = result;
  if (output.type === "text" || output.type === "error-text") return output.value as string;
  if (output.type === "content") {
    return (output.value as { type: string; text?: string }[])
      .filter((p) => p.type === "text")
      .map((p) => p.text)
      .join("\n");
  }
  return JSON.stringify(output.value);
}

declare module "vitest" {
  export interface ProvidedContext {
    /** Set only in remote mode (tests/remote/vitest.config.ts): the server to test against. */
    kilnServer?: { url: string; apiKey: string };
  }
}
