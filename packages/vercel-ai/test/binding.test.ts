// How a tool set is wired to its sandbox: given, its own, or a conversation's (by key, through
// core's ConversationSandboxes), across Kiln instances (as after a process restart), and what
// dispose and idle do to it. Core's own tests cover the lifecycle and the name mapping.
import { sandboxNameFor } from "@kiln/core";
import { generateText, stepCountIs, ToolLoopAgent } from "ai";
import { describe, expect, it } from "vitest";
import { disposeKilnTools, getKilnSandbox, kilnTools, sandboxNameForKey } from "../src/index.ts";
import {
  newKiln,
  scriptedModel,
  TEST_LABELS,
  testKiln,
  testSandbox,
  textOf,
  toolResultsSeen,
  track,
  uniqueName,
} from "./helpers.ts";

const kiln = testKiln();
const sandboxOptions = { labels: TEST_LABELS };

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("a conversation key", () => {
  it("continues the conversation's sandbox from another Kiln, stops it on dispose, restarts it later", async () => {
    const key = uniqueName("chat");
    const first = kilnTools({ kiln, sandboxOptions, key });
    const agent = new ToolLoopAgent({
      model: scriptedModel([
        [{ tool: "run_code", input: { code: "x = 41" } }],
        [{ tool: "write_file", input: { path: "notes.txt", content: "remember 41" } }],
        "noted",
      ]),
      tools: first,
      stopWhen: stepCountIs(5),
    });
    expect((await agent.generate({ prompt: "remember 41" })).text).toBe("noted");
    const sandbox = track(await getKilnSandbox(first));
    expect(sandbox.name).toBe(`ai-${key}`);

    // Another key is another conversation: another sandbox, without this one's state.
    const stranger = kilnTools({ kiln, sandboxOptions, key: uniqueName("chat") });
    const peek = scriptedModel([[{ tool: "run_code", input: { code: '"x" in globals()' } }], "no"]);
    await generateText({ model: peek, tools: stranger, stopWhen: stepCountIs(3), prompt: "is x set" });
    expect(textOf(toolResultsSeen(peek, 1).get("run_code"))).toBe("result:\nFalse");
    expect(track(await getKilnSandbox(stranger)).id).not.toBe(sandbox.id);
    await disposeKilnTools(stranger, { delete: true });

    // Another Kiln (another process, after a restart) with the same key: same sandbox, same Python state.
    const other = newKiln();
    try {
      const second = kilnTools({ kiln: other, sandboxOptions, key });
      const model = scriptedModel([[{ tool: "run_code", input: { code: "x + 1" } }], "42"]);
      await generateText({ model, tools: second, stopWhen: stepCountIs(3), prompt: "what is x + 1" });
      expect(textOf(toolResultsSeen(model, 1).get("run_code"))).toBe("result:\n42");
      expect((await getKilnSandbox(second)).id).toBe(sandbox.id);

      // Dispose stops a keyed sandbox: its files stay for the conversation's next turn.
      await disposeKilnTools(second);
      expect((await sandbox.info()).state).toBe("stopped");
      await expect(
        second.run_code.execute?.({ code: "1" }, { toolCallId: "t", messages: [], context: {} }),
      ).rejects.toThrow(/closed/);

      const third = kilnTools({ kiln: other, sandboxOptions, key });
      const later = scriptedModel([[{ tool: "read_file", input: { path: "notes.txt" } }], "ok"]);
      await generateText({ model: later, tools: third, stopWhen: stepCountIs(3), prompt: "what did I say" });
      expect(textOf(toolResultsSeen(later, 1).get("read_file"))).toBe("remember 41");
      await disposeKilnTools(third, { delete: true });
      await expect(kiln.get(sandbox.name as string)).rejects.toThrow(/not found|No sandbox/i);
    } finally {
      await other.close();
    }
  });

  it("is named with core's sandboxNameFor, and an empty key fails when the tools are made", () => {
    expect(sandboxNameForKey("chat-123")).toBe("ai-chat-123");
    expect(sandboxNameForKey("user@example.com/chat 7")).toBe(sandboxNameFor("ai-", "user@example.com/chat 7"));
    expect(() => kilnTools({ kiln, key: "" })).toThrow(/conversation id/);
  });
});

describe("a tool set's own sandbox", () => {
  it("is made once on first use, even for parallel tool calls, and deleted on dispose", async () => {
    // A label of this test's own: other files of the suite create sandboxes at the same time.
    const mine = { ...TEST_LABELS, case: `own-${process.pid}-${Date.now()}` };
    const tools = kilnTools({
      kiln,
      sandboxOptions: { ...sandboxOptions, labels: { ...sandboxOptions.labels, ...mine } },
    });
    const model = scriptedModel([
      [
        { tool: "run_command", input: { command: "echo a > a.txt" } },
        { tool: "run_command", input: { command: "echo b > b.txt" } },
        { tool: "list_files", input: {} },
      ],
      [{ tool: "list_files", input: {} }],
      "ok",
    ]);
    await generateText({ model, tools, stopWhen: stepCountIs(4), prompt: "go" });
    const sandbox = track(await getKilnSandbox(tools));
    expect(sandbox.name).toMatch(/^ai-own-[0-9a-f]{12}$/);
    expect((await kiln.list({ labels: mine })).length).toBe(1);
    expect(textOf(toolResultsSeen(model, 2).get("list_files"))).toMatch(/a\.txt[\s\S]*b\.txt/);
    expect((await sandbox.info()).labels.adapter).toBe("vercel-ai");

    await tools[Symbol.asyncDispose]();
    await expect(sandbox.info()).rejects.toThrow();
  });

  it("is stopped when idle and started again by the next tool call", async () => {
    const tools = kilnTools({ kiln, sandboxOptions, idleTimeoutMs: 500 });
    const model = scriptedModel([
      [{ tool: "write_file", input: { path: "kept.txt", content: "still here" } }],
      "ok",
      [{ tool: "read_file", input: { path: "kept.txt" } }],
      "ok",
    ]);
    await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "go" });
    const sandbox = track(await getKilnSandbox(tools));
    await waitFor(async () => (await sandbox.info()).state === "stopped", 20_000);

    await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "go on" });
    // Every tool's first call after a restart carries the note (core's runTool), then its output.
    expect(textOf(toolResultsSeen(model, 3).get("read_file"))).toMatch(
      /^\[The sandbox had been stopped[^\]]*\]\n\nstill here$/,
    );
    await waitFor(async () => (await sandbox.info()).state === "stopped", 20_000);
    const code = scriptedModel([[{ tool: "run_code", input: { code: "1 + 1" } }], "ok"]);
    await generateText({ model: code, tools, stopWhen: stepCountIs(3), prompt: "go on" });
    expect(textOf(toolResultsSeen(code, 1).get("run_code"))).toMatch(
      /^\[The sandbox had been stopped[^\]]*\]\n\nresult:\n2$/,
    );
    await disposeKilnTools(tools);
  });
});

describe("a given sandbox", () => {
  it("is used as it is and left alone on dispose", async () => {
    const sandbox = await testSandbox(kiln);
    await sandbox.files.write("given.txt", "mine");
    const tools = kilnTools({ sandbox });
    const model = scriptedModel([[{ tool: "read_file", input: { path: "/workspace/given.txt" } }], "ok"]);
    await generateText({ model, tools, stopWhen: stepCountIs(3), prompt: "go" });
    expect(textOf(toolResultsSeen(model, 1).get("read_file"))).toBe("mine");
    await disposeKilnTools(tools);
    expect((await sandbox.info()).state).toBe("running");
  });

  it("is not started when it was stopped: a fault of the sandbox itself reaches the model as a tool error", async () => {
    const sandbox = await testSandbox(kiln);
    const tools = kilnTools({ sandbox });
    const model = scriptedModel([
      [{ tool: "run_command", input: { command: "echo back" } }],
      [{ tool: "run_command", input: { command: "echo again" } }],
      "ok",
    ]);
    await generateText({
      model,
      tools,
      stopWhen: stepCountIs(4),
      prompt: "go",
      onStepFinish: async ({ stepNumber }) => {
        if (stepNumber === 0) await sandbox.stop();
      },
    });
    expect(textOf(toolResultsSeen(model, 1).get("run_command"))).toBe("exit code: 0\n\nstdout:\nback");
    const fault = toolResultsSeen(model, 2).get("run_command");
    expect(fault?.type).toBe("error-text");
    expect(textOf(fault)).toMatch(/^SandboxNotRunningError: Sandbox .* is (stopped|exited)/);
    expect((await sandbox.info()).state).toBe("stopped");
  });
});
