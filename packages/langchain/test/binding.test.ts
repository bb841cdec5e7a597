// The adapter's wiring to core's ConversationSandboxes (whose lifecycle core's tests cover): the
// thread id taken from LangGraph's run config through the real agent loop, the adapter's labels,
// the note telling the model its sandbox was restarted, close() releasing, a given sandbox untouched.
import { type Kiln, KilnError } from "@kiln/core";
import { HumanMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import type { StructuredTool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { describe, expect, it } from "vitest";
import { createKilnTools, type KilnToolsWithKiln, sandboxNameForThread } from "../src/index.ts";
import { deleteAfterwards, done, lastToolMessage, sandbox, TEST_LABELS, testKiln, uniqueId } from "./helpers.ts";

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
    expect((await sandboxA.info()).labels).toMatchObject({ ...TEST_LABELS, "kiln-adapter": "langchain" });

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
    const mine = { ...TEST_LABELS, case: thread };
    const set = tools({ sandboxOptions: { labels: mine } });
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
    expect((await kiln.list({ labels: mine })).map((s) => s.name)).toEqual([`lc-${thread}`]);
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
    const toolSets = names.filter((s) => /^lc-own-[0-9a-f]{12}$/.test(s.name ?? ""));
    expect(toolSets.length).toBe(2);

    const ids = toolSets.map((s) => s.name!);
    deleteAfterwards(kiln, ...ids);
    await Promise.all([one.close(), other.close()]);
    // Nothing could find a tool set's sandbox again, so it is deleted even with release "stop".
    for (const name of ids) expect(await state(kiln, name)).toBe("absent");
  });

  it("stops a sandbox idle for idleTimeoutMs; the next call starts it again with its files and tells the model", async () => {
    const thread = uniqueId("idle");
    const name = `lc-${thread}`;
    deleteAfterwards(kiln, name);
    const set = tools({ idleTimeoutMs: 500, release: "stop" });
    await onThread(set, thread, "write_file", { path: "kept.txt", content: "still here" });
    await until(async () => (await state(kiln, name)) === "stopped");

    expect(await onThread(set, thread, "read_file", { path: "kept.txt" })).toBe(
      "[The sandbox had been stopped (idle) and was started again for this call: files are kept, but variables, " +
        "imports and functions from earlier run_code calls are gone. Re-run what you need.]\n\nstill here",
    );
    expect(await state(kiln, name)).toBe("running");
    // Said once: the next call in the running sandbox has no note.
    expect(await onThread(set, thread, "read_file", { path: "kept.txt" })).toBe("still here");

    // close() with release "stop": stopped, not deleted, so the conversation can resume later.
    await set.close();
    expect(await state(kiln, name)).toBe("stopped");
    const later = tools({ release: "delete" });
    expect(await onThread(later, thread, "read_file", { path: "kept.txt" })).toBe("still here");
    await later.close();
    expect(await state(kiln, name)).toBe("absent");
  });

  it("opens the sandbox again when it was deleted behind the tool set's back, and tells the model", async () => {
    const thread = uniqueId("gone");
    deleteAfterwards(kiln, `lc-${thread}`);
    const set = tools();
    await onThread(set, thread, "write_file", { path: "a.txt", content: "a" });
    await (await kiln.get(`lc-${thread}`)).delete();
    expect(await onThread(set, thread, "list_files", {})).toBe(
      "[The sandbox had been deleted and a new, empty one was made for this call: files and variables from " +
        "earlier calls are gone.]\n\n/workspace is empty.",
    );
    await set.close();
  });

  it("derives a valid, distinct sandbox name from any thread id", async () => {
    const thread = `user@example.com/chat ${uniqueId("x")} ${"long ".repeat(20)}`;
    const name = sandboxNameForThread(thread, "lc-");
    expect(name).toMatch(/^lc-[a-zA-Z0-9_.-]{1,60}$/);
    deleteAfterwards(kiln, name);
    const set = tools();
    expect(await onThread(set, thread, "run_command", { command: "echo ok" })).toBe("exit code: 0\n\nstdout:\nok");
    expect(await state(kiln, name)).toBe("running");
    await set.close();
  });

  it("close() (await using) releases the tools' sandboxes, and they cannot be used after it", async () => {
    const thread = uniqueId("dispose");
    const name = `lc-${thread}`;
    deleteAfterwards(kiln, name);
    let kept: StructuredTool[];
    {
      await using set = tools({ release: "stop" });
      kept = set;
      await onThread(set, thread, "run_command", { command: "true" });
      expect(await state(kiln, name)).toBe("running");
    }
    expect(await state(kiln, name)).toBe("stopped");
    const model = fakeModel()
      .respondWithTools([{ name: "run_command", args: { command: "true" } }])
      .respond(done());
    await createAgent({ model, tools: kept }).invoke(
      { messages: [new HumanMessage("go")] },
      { configurable: { thread_id: thread } },
    );
    const answer = lastToolMessage(model.calls[1]!.messages);
    expect(answer.status).toBe("error");
    expect(answer.content).toContain("closed");
  });
});

describe("createKilnTools({ sandbox }): the caller's sandbox", () => {
  it("runs every thread in it, and close() neither stops nor deletes it", async () => {
    const given = await sandbox(kiln);
    const set = createKilnTools({ sandbox: given });
    await onThread(set, uniqueId("t1"), "write_file", { path: "shared.txt", content: "one sandbox" });
    expect(await onThread(set, uniqueId("t2"), "read_file", { path: "shared.txt" })).toBe("one sandbox");
    await set.close();
    expect((await given.info()).state).toBe("running");
  });
});
