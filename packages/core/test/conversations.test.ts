import { describe, expect, it } from "vitest";
import { ConversationSandboxes, Kiln, SandboxNotFoundError, type UseInfo } from "../src/index.ts";
import { TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();
const sandboxOptions = { labels: TEST_LABELS };

async function run(conversations: ConversationSandboxes, id: string | undefined, command: string) {
  let info: UseInfo = {};
  const result = await conversations.use(id, async (sandbox, i) => {
    info = i;
    return { id: sandbox.id, out: (await sandbox.exec(command)).stdout };
  });
  return { ...result, info };
}

describe("ConversationSandboxes", () => {
  it("gives each conversation its own sandbox and the same one on every call", async () => {
    await using conversations = new ConversationSandboxes({
      kiln,
      namePrefix: "t-",
      sandboxOptions,
      release: "delete",
    });
    const alice = uniqueName("alice");
    const first = await run(conversations, alice, "echo 1 > n.txt && cat n.txt");
    const again = await run(conversations, alice, "cat n.txt");
    const bob = await run(conversations, uniqueName("bob"), "ls n.txt 2>&1 || true");
    expect(again.id).toBe(first.id);
    expect(again.out).toBe("1\n");
    expect(bob.id).not.toBe(first.id);
    expect(bob.out).toMatch(/No such file/);
    expect((await kiln.get(conversations.nameFor(alice))).id).toBe(first.id);
  });

  it("continues a conversation from another instance (another process), and stops it on close", async () => {
    const id = uniqueName("resume");
    const one = new ConversationSandboxes({ kiln, namePrefix: "t-", sandboxOptions });
    const made = await run(one, id, "echo kept > memory.txt");
    await one.close();
    expect((await (await kiln.get(made.id)).info()).state).toBe("stopped");

    const other = new Kiln();
    const two = new ConversationSandboxes({ kiln: other, namePrefix: "t-", sandboxOptions, release: "delete" });
    try {
      const resumed = await run(two, id, "cat memory.txt");
      expect(resumed.id).toBe(made.id);
      expect(resumed.out).toBe("kept\n");
    } finally {
      await two.close();
      await other.close();
    }
    await expect(kiln.get(made.id)).rejects.toThrow(SandboxNotFoundError);
  });

  it("stops an idle sandbox and says so when the next call starts it again", async () => {
    await using conversations = new ConversationSandboxes({
      kiln,
      namePrefix: "t-",
      sandboxOptions,
      idleTimeoutMs: 300,
    });
    const id = uniqueName("idle");
    const made = await run(conversations, id, "echo x > f.txt");
    await new Promise((r) => setTimeout(r, 300));
    await expect
      .poll(async () => (await kiln.engine.inspectContainer(made.id))?.status, { timeout: 10_000 })
      .toBe("exited");
    const back = await run(conversations, id, "cat f.txt");
    expect(back).toMatchObject({ id: made.id, out: "x\n", info: { restarted: "started" } });
    await (await kiln.get(made.id)).delete();
  });

  it("makes a deleted sandbox again and says its files are gone", async () => {
    await using conversations = new ConversationSandboxes({
      kiln,
      namePrefix: "t-",
      sandboxOptions,
      release: "delete",
    });
    const id = uniqueName("deleted");
    const made = await run(conversations, id, "true");
    await (await kiln.get(made.id)).delete();
    const again = await run(conversations, id, "echo fresh");
    expect(again.id).not.toBe(made.id);
    expect(again.info).toEqual({ restarted: "recreated" });
  });

  it("without a conversation id uses a private sandbox, deleted on close", async () => {
    const conversations = new ConversationSandboxes({ kiln, namePrefix: "t-", sandboxOptions });
    const a = await run(conversations, undefined, "echo a");
    const b = await run(conversations, undefined, "echo b");
    expect(b.id).toBe(a.id);
    await conversations.close();
    await expect(kiln.get(a.id)).rejects.toThrow(SandboxNotFoundError);
    await expect(conversations.use(undefined, async () => 1)).rejects.toThrow(/closed/);
  });
});
