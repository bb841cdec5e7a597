// Fixtures for integration tests against the real engine. Every sandbox a test makes is
// labelled, deleted afterwards, and its id printed when the test fails.
import { type CreateSandboxOptions, Kiln, type Sandbox } from "@kiln/core";
import { AIMessage, type BaseMessage, ToolMessage } from "@langchain/core/messages";
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
const named: { kiln: Kiln; name: string }[] = [];
afterAll(async () => {
  await Promise.all([
    ...made.splice(0).map((s) => s.delete().catch(() => {})),
    ...named
      .splice(0)
      .map(async ({ kiln, name }) => (await kiln.get(name).catch(() => undefined))?.delete().catch(() => {})),
  ]);
});

/** A sandbox deleted after the file's tests. */
export async function sandbox(kiln: Kiln, options: CreateSandboxOptions = {}): Promise<Sandbox> {
  const created = await kiln.create({ ...options, labels: { ...TEST_LABELS, ...options.labels } });
  made.push(created);
  try {
    onTestFailed(() => console.error(`sandbox under test: ${created.id}${created.name ? ` (${created.name})` : ""}`));
  } catch {
    // Outside a test (in a beforeAll hook) there is no test to attach the message to.
  }
  return created;
}

/** Deletes the named sandboxes after the file's tests (for sandboxes the adapter creates itself). */
export function deleteAfterwards(kiln: Kiln, ...names: string[]): void {
  named.push(...names.map((name) => ({ kiln, name })));
  try {
    onTestFailed(() => console.error(`sandboxes under test: ${names.join(", ")}`));
  } catch {
    // Outside a test there is no test to attach the message to.
  }
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The ToolMessages in what the model was sent, in order. */
export function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
}

/** The last message the model was sent, which must be a tool's answer. */
export function lastToolMessage(messages: BaseMessage[]): ToolMessage {
  const last = messages.at(-1);
  if (!last || !ToolMessage.isInstance(last)) throw new Error(`expected a ToolMessage last, got ${last?.type}`);
  return last;
}

/** A tool result's text, whether its content is a string or content blocks. */
export function textOf(message: ToolMessage): string {
  if (typeof message.content === "string") return message.content;
  return message.content
    .map((b) => (b.type === "text" && "text" in b ? String(b.text) : ""))
    .filter(Boolean)
    .join("\n");
}

export const done = (text = "Done.") => new AIMessage(text);

declare module "vitest" {
  export interface ProvidedContext {
    /** Set only in remote mode (tests/remote/vitest.config.ts): the server to test against. */
    kilnServer?: { url: string; apiKey: string };
  }
}
