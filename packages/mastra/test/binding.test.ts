// { kiln } binding: one sandbox per Mastra thread (core's ConversationSandboxes), wired through
// Mastra's real agent loop: threads kept apart, found again from a new process, the model told
// when its sandbox was restarted, released on dispose. { sandbox } binding: never touched.
import { Agent } from "@mastra/core/agent";
import { MASTRA_RESOURCE_ID_KEY, RequestContext } from "@mastra/core/request-context";
import { describe, expect, it } from "vitest";
import { createKilnTools, sandboxNameFor } from "../src/index.ts";
import {
  cleanUpNamed,
  newKiln,
  sandbox,
  scriptedModel,
  TEST_LABELS,
  type Turn,
  testKiln,
  textOf,
  toolResultsSeen,
  uniqueName,
} from "./helpers.ts";

const kiln = testKiln();

function agentWith(tools: ReturnType<typeof createKilnTools>, turns: Turn[]) {
  const model = scriptedModel(turns);
  return { model, agent: new Agent({ id: "a", name: "a", instructions: "x", model, tools }) };
}

/** One generate call in `thread` that runs `command`; returns what the model read back. */
async function runIn(tools: ReturnType<typeof createKilnTools>, thread: string | undefined, command: string) {
  const { model, agent } = agentWith(tools, [[{ tool: "run_command", input: { command } }], "ok"]);
  await agent.generate("go", thread ? { memory: { thread, resource: "user-1" } } : {});
  return textOf(toolResultsSeen(model, 1)[0]!);
}

describe("one sandbox per Mastra thread", () => {
  it("keeps threads apart, keeps state within a thread, and stops them on dispose", async () => {
    const [threadA, threadB] = [uniqueName("thread-a"), uniqueName("thread-b")];
    cleanUpNamed(kiln, sandboxNameFor(threadA));
    cleanUpNamed(kiln, sandboxNameFor(threadB));
    const tools = createKilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS } });

    await runIn(tools, threadA, "echo alpha > note.txt");
    await runIn(tools, threadB, "echo beta > note.txt");
    expect(await runIn(tools, threadA, "cat note.txt")).toContain("alpha");
    expect(await runIn(tools, threadB, "cat note.txt")).toContain("beta");

    const a = await kiln.get(sandboxNameFor(threadA));
    expect((await a.info()).labels).toMatchObject(TEST_LABELS);
    expect((await a.info()).state).toBe("running");

    await tools[Symbol.asyncDispose]();
    expect((await a.info()).state).toBe("stopped");
    expect((await (await kiln.get(sandboxNameFor(threadB))).info()).state).toBe("stopped");
    // An infrastructure fault is Mastra's normal tool error: the model reads it, the loop goes on.
    expect(await runIn(tools, threadA, "true")).toMatch(/conversation sandboxes were closed/);
  });

  it("finds a thread's sandbox again from a new process (new Kiln, new tools), files intact", async () => {
    const thread = uniqueName("thread-restart");
    cleanUpNamed(kiln, sandboxNameFor(thread));
    const first = createKilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS } });
    await runIn(first, thread, "echo kept > state.txt");
    await first[Symbol.asyncDispose]();

    const otherKiln = newKiln();
    try {
      const second = createKilnTools({ kiln: otherKiln, sandboxOptions: { labels: TEST_LABELS } });
      expect(await runIn(second, thread, "cat state.txt")).toContain("kept");
      await second[Symbol.asyncDispose]();
    } finally {
      await otherKiln.close();
    }
  });

  it("stops an idle thread's sandbox and restarts it on the next call, telling the model", async () => {
    const thread = uniqueName("thread-idle");
    const name = sandboxNameFor(thread);
    cleanUpNamed(kiln, name);
    const tools = createKilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS }, idleTimeoutMs: 300 });
    await runIn(tools, thread, "echo idle > idle.txt");

    const sandbox = await kiln.get(name);
    await expect.poll(async () => (await sandbox.info()).state, { timeout: 10_000, interval: 200 }).toBe("stopped");
    const seen = await runIn(tools, thread, "cat idle.txt");
    expect(seen).toMatch(/^\[The sandbox had been stopped \(idle\) and was started again/);
    expect(seen).toContain("idle");
    // Only the first call after the restart carries the note.
    expect(await runIn(tools, thread, "true")).not.toMatch(/started again/);
    await tools[Symbol.asyncDispose]();
  });

  it("restarts a thread's sandbox stopped or deleted behind its back; the model is told", async () => {
    const thread = uniqueName("thread-stopped");
    const name = sandboxNameFor(thread);
    cleanUpNamed(kiln, name);
    const tools = createKilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS }, idleTimeoutMs: 120_000 });
    await runIn(tools, thread, "echo here > here.txt");
    await (await kiln.get(name)).stop();
    const restarted = await runIn(tools, thread, "cat here.txt");
    expect(restarted).toMatch(/started again for this call: files are kept/);
    expect(restarted).toContain("here");

    await (await kiln.get(name)).delete();
    const recreated = await runIn(tools, thread, "ls here.txt");
    expect(recreated).toMatch(/^\[The sandbox had been deleted and a new, empty one was made/);
    expect(recreated).toMatch(/No such file/);
    expect(tools.run_code.description).toMatch(/After 2 minutes without calls the sandbox is paused/);
    await tools[Symbol.asyncDispose]();
  });

  it("keys on the resource when a call has no thread", async () => {
    const resource = uniqueName("resource");
    cleanUpNamed(kiln, sandboxNameFor(resource));
    const tools = createKilnTools({ kiln, sandboxOptions: { labels: TEST_LABELS } });
    const { agent } = agentWith(tools, [[{ tool: "run_command", input: { command: "true" } }], "ok"]);
    const requestContext = new RequestContext();
    requestContext.set(MASTRA_RESOURCE_ID_KEY, resource);
    await agent.generate("go", { requestContext });
    expect((await (await kiln.get(sandboxNameFor(resource))).info()).state).toBe("running");
    await tools[Symbol.asyncDispose]();
  });

  it("without thread or resource, uses one sandbox per tool set and deletes it on dispose", async () => {
    // A label of this test's own: other files of the suite create sandboxes at the same time.
    const mine = { ...TEST_LABELS, case: `toolset-${process.pid}-${Date.now()}` };
    const toolSetSandboxes = async () =>
      (await kiln.list({ labels: mine })).filter((s) => s.name?.startsWith("mastra-own-")).map((s) => s.id);
    const before = await toolSetSandboxes();
    const tools = createKilnTools({ kiln, sandboxOptions: { labels: mine } });
    await runIn(tools, undefined, "echo one > f.txt");
    expect(await runIn(tools, undefined, "cat f.txt")).toContain("one");

    const made = (await toolSetSandboxes()).filter((id) => !before.includes(id));
    expect(made).toHaveLength(1);
    await tools[Symbol.asyncDispose]();
    expect(await toolSetSandboxes()).not.toContain(made[0]);
  });

  it("never stops or deletes a sandbox it was given", async () => {
    const given = await sandbox(kiln);
    const tools = createKilnTools({ sandbox: given });
    expect(await runIn(tools, "thread-ignored", "echo mine")).toContain("mine");
    await tools[Symbol.asyncDispose]();
    expect((await given.info()).state).toBe("running");
    expect(await runIn(tools, undefined, "echo still")).toContain("still");
  });
});
