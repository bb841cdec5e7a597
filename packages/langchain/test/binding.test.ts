// { kiln } binding: one sandbox per LangGraph thread (configurable.thread_id), created lazily with
// kiln.getOrCreate under a name derived from the thread id, found again after a "restart" (a new
// tool set), stopped when idle and released by close().
import { type Kiln, KilnError } from "@kiln/core";
import { HumanMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import type { StructuredTool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { describe, expect, it } from "vitest";
import { createKilnTools, type KilnToolsWithKiln, sandboxNameForThread } from "../src/index.ts";
import { deleteAfterwards, done, lastToolMessage, TEST_LABELS, testKiln, uniqueId } from "./helpers.ts";

const kiln = testKiln();

function tools(options: Partial<KilnToolsWithKiln> = {}) {
  return createKilnTools({ kiln, sandboxOptions: { labels: { ...TEST_LABELS } }, release: "delete", ...options });
}

/** One agent turn on a thread in which the model makes one tool call; returns what the tool answered. */
async function onThread(
  set: StructuredTool[],
  threadId: string | undefined,
  name: string,
  args: Record<string, unknown>,
) {
  const model = fakeModel().respondWithTools([{ name, args }]).respond(done());
  const agent = createAgent({ model, tools: set });
  await agent.invoke(
    { messages: [new HumanMessage("go")] },
    threadId === undefined ? {} : { configurable: { thread_id: threadId } },
  );
  return lastToolMessage(model.calls[1]!.messages).content;
}

async function state(k: Kiln, name: string) {
  try {
    return (await (await k.get(name)).info()).state;
  } catch (err) {
    if (KilnError.isInstance(err) && err.code === "SANDBOX_NOT_FOUND") return "absent";
    throw err;
  }
}

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("createKilnTools({ kiln }): a sandbox per thread", () => {
  it("gives each thread its own sandbox, named after the thread, found again by a new tool set", async () => {
    const [a, b] = [uniqueId("thread-a"), uniqueId("thread-b")];
    deleteAfterwards(kiln, `lc-${a}`, `lc-${b}`);
    const first = tools();
    expect(await onThread(first, a, "write_file", { path: "who.txt", content: "thread a" })).toContain("Wrote");
    expect(await onThread(first, b, "run_command", { command: "cat who.txt" })).toContain("No such file");

    const sandboxA = await kiln.get(`lc-${a}`);
    expect((await sandboxA.info()).labels).toMatchObject({
      ...TEST_LABELS,
      "kiln-adapter": "langchain",
      "langchain-thread-id": a,
    });

    // A second tool set (as after a process restart) finds thread a's sandbox by its name.
    const second = tools();
    expect(await onThread(second, a, "read_file", { path: "who.txt" })).toBe("thread a");
    expect((await kiln.get(`lc-${a}`)).id).toBe(sandboxA.id);

    await Promise.all([first.close(), second.close()]);
    expect(await state(kiln, `lc-${a}`)).toBe("absent");
    expect(await state(kiln, `lc-${b}`)).toBe("absent");
  });

  it("opens a thread's sandbox once when the model makes parallel calls on a new thread", async () => {
    const thread = uniqueId("parallel");
    deleteAfterwards(kiln, `lc-${thread}`);
    const set = tools();
    const model = fakeModel()
      .respondWithTools([
        { name: "run_command", args: { command: "echo 1" } },
        { name: "run_command", args: { command: "echo 2" } },
        { name: "run_code", args: { code: "3" } },
      ])
      .respond(done());
    await createAgent({ model, tools: set }).invoke(
      { messages: [new HumanMessage("go")] },
      { configurable: { thread_id: thread } },
    );
    expect(await kiln.list({ labels: { "langchain-thread-id": thread } })).toHaveLength(1);
    await set.close();
  });

  it("without a thread id uses one sandbox per tool set, deleted by close()", async () => {
    // A label of this test's own: other files of the suite create tool-set sandboxes at the same time.
    const mine = { ...TEST_LABELS, case: `toolset-${process.pid}-${Date.now()}` };
    const one = tools({ release: "stop", sandboxOptions: { labels: mine } });
    const other = tools({ release: "stop", sandboxOptions: { labels: mine } });
    await onThread(one, undefined, "run_code", { code: "x = 41" });
    expect(await onThread(one, undefined, "run_code", { code: "x + 1" })).toBe("result:\n42");
    expect(await onThread(other, undefined, "run_code", { code: "x" })).toContain("error: NameError");

    const names = await kiln.list({ labels: { ...mine, "kiln-adapter": "langchain" } });
    const toolSets = names.filter((s) => s.name?.startsWith("lc-toolset-") && !s.labels["langchain-thread-id"]);
    expect(toolSets.length).toBe(2);

    const ids = toolSets.map((s) => s.name!);
    deleteAfterwards(kiln, ...ids);
    await Promise.all([one.close(), other.close()]);
    // Nothing could find a tool set's sandbox again, so it is deleted even with release "stop".
    for (const name of ids) expect(await state(kiln, name)).toBe("absent");
  });

  it("stops a sandbox idle for idleTimeoutMs; the next call starts it again with its files", async () => {
    const thread = uniqueId("idle");
    const name = `lc-${thread}`;
    deleteAfterwards(kiln, name);
    const set = tools({ idleTimeoutMs: 500, release: "stop" });
    await onThread(set, thread, "write_file", { path: "kept.txt", content: "still here" });
    await until(async () => (await state(kiln, name)) === "stopped");

    expect(await onThread(set, thread, "read_file", { path: "kept.txt" })).toBe("still here");
    expect(await state(kiln, name)).toBe("running");

    // close() with release "stop": stopped, not deleted, so the conversation can resume later.
    await set.close();
    expect(await state(kiln, name)).toBe("stopped");
    const later = tools({ release: "delete" });
    expect(await onThread(later, thread, "read_file", { path: "kept.txt" })).toBe("still here");
    await later.close();
    expect(await state(kiln, name)).toBe("absent");
  });

  it("opens the sandbox again when it was deleted behind the tool set's back", async () => {
    const thread = uniqueId("gone");
    deleteAfterwards(kiln, `lc-${thread}`);
    const set = tools();
    await onThread(set, thread, "write_file", { path: "a.txt", content: "a" });
    await (await kiln.get(`lc-${thread}`)).delete();
    expect(await onThread(set, thread, "list_files", {})).toBe("/workspace is empty.");
    await set.close();
  });

  it("derives a valid, distinct sandbox name from any thread id", async () => {
    const thread = `user@example.com/chat ${uniqueId("x")} ${"long ".repeat(20)}`;
    const name = sandboxNameForThread(thread, "lc-");
    expect(name).toMatch(/^lc-[a-zA-Z0-9_.-]{1,60}$/);
    deleteAfterwards(kiln, name);
    const set = tools();
    expect(await onThread(set, thread, "run_command", { command: "echo ok" })).toBe("exit code: 0\nstdout:\nok");
    expect(await state(kiln, name)).toBe("running");
    await set.close();
  });
});
