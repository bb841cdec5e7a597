// LangChain's real agent loop (createAgent) driven by LangChain's own scripted fake model
// (fakeModel from @langchain/core/testing) calls each Kiln tool against a real sandbox. Every
// test asserts on what the model is sent next: the ToolMessage the tool produced.
import type { Sandbox } from "@kiln/core";
import { HumanMessage, type ToolMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { createAgent } from "langchain";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createKilnTools, type KilnToolsWithSandbox } from "../src/index.ts";
import { done, lastToolMessage, sandbox, testKiln, textOf, toolMessages } from "./helpers.ts";

const kiln = testKiln();
let box: Sandbox;
beforeAll(async () => {
  box = await sandbox(kiln);
});

type Call = { name: string; args: Record<string, unknown> };

/** One agent turn in which the model makes the given tool calls, then answers. */
async function afterToolCalls(calls: Call[], options: Partial<KilnToolsWithSandbox> = {}) {
  const model = fakeModel().respondWithTools(calls).respond(done());
  const agent = createAgent({ model, tools: createKilnTools({ sandbox: box, ...options }) });
  const state = await agent.invoke({ messages: [new HumanMessage("Use the sandbox.")] });
  expect(model.callCount).toBe(2);
  const sent = model.calls[1]!.messages;
  return { state, sent, last: lastToolMessage(sent) };
}

type Blocks = Exclude<ToolMessage["content"], string>;
type ImageBlock = { type: "image"; mimeType: string; data: string };
const imagesOf = (m: ToolMessage) => (m.content as Blocks).filter((b) => b.type === "image") as ImageBlock[];
const isPng = (base64: string) =>
  Buffer.from(base64, "base64")
    .subarray(0, 4)
    .equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));

describe("createKilnTools in createAgent", () => {
  it("offers the five tools, with descriptions that state the sandbox and its limits", async () => {
    const tools = createKilnTools({ sandbox: box, timeoutMs: 30_000, maxOutputChars: 5_000 });
    expect(tools.map((t) => t.name)).toEqual(["run_code", "run_command", "read_file", "write_file", "list_files"]);
    const runCode = tools[0]!.description;
    for (const fact of ["isolated Linux container", "pandas", "matplotlib", "Node.js 24", "/workspace"]) {
      expect(runCode).toContain(fact);
    }
    expect(runCode).toContain("persist between run_code calls");
    expect(runCode).toContain("may run for 30 s at most");
    expect(runCode).toContain("cut to 5000 characters each");
    expect(runCode).toContain("no network access unless it was enabled for you");
    const input = (t: (typeof tools)[number]) =>
      z.toJSONSchema(t.schema as z.ZodObject) as { properties: Record<string, object> };
    expect(input(tools[0]!).properties.language).toMatchObject({
      description: 'The language of the code. Default "python"',
    });
    // Code without a language runs in the sandbox's own language, and the model is told which.
    const created = createKilnTools({ kiln, sandboxOptions: { language: "javascript" } });
    expect(created[0]!.description).toContain("In this sandbox code without a language runs as JavaScript.");
    expect(input(created[0]!).properties.language).toMatchObject({
      description: 'The language of the code. Default "javascript"',
    });
  });

  it("runs a multi-step analysis: write_file, then run_code with pandas, state kept between cells", async () => {
    const csv = "month,revenue\njan,120\nfeb,135\nmar,160\n";
    const model = fakeModel()
      .respondWithTools([{ name: "write_file", args: { path: "data/sales.csv", content: csv } }])
      .respondWithTools([
        { name: "run_code", args: { code: "import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(len(df))" } },
      ])
      .respondWithTools([{ name: "run_code", args: { code: "df.revenue.sum()" } }])
      .respond(done("Revenue was 415."));
    const agent = createAgent({ model, tools: createKilnTools({ sandbox: box }) });
    const state = await agent.invoke({ messages: [new HumanMessage("Total revenue?")] });

    expect(model.callCount).toBe(4);
    expect(lastToolMessage(model.calls[1]!.messages).content).toBe("Wrote 38 bytes to /workspace/data/sales.csv.");
    const printed = lastToolMessage(model.calls[2]!.messages);
    expect(printed).toMatchObject({ name: "run_code", status: "success", content: "stdout:\n3" });
    // The second cell sees the first cell's `df`: the interpreter state persists.
    expect(lastToolMessage(model.calls[3]!.messages).content).toBe("result:\n415");
    expect(state.messages.at(-1)?.content).toBe("Revenue was 415.");
  });

  it("run_code: a matplotlib chart reaches the model as a standard image content block", async () => {
    const { last } = await afterToolCalls([
      {
        name: "run_code",
        args: { code: "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2])\nprint('drawn')\nplt.show()" },
      },
    ]);
    expect(Array.isArray(last.content)).toBe(true);
    expect((last.content as Blocks)[0]).toMatchObject({ type: "text" });
    expect(textOf(last)).toContain("stdout:\ndrawn");
    expect(textOf(last)).toContain("display:\n[image 1: image/png, attached]");
    const [image, ...more] = imagesOf(last);
    expect(more).toEqual([]);
    expect(image).toMatchObject({ type: "image", mimeType: "image/png" });
    expect(isPng(image!.data)).toBe(true);
    // The image travels as an image block, never as base64 inside the text.
    expect(textOf(last)).not.toContain(image!.data.slice(0, 40));
  });

  it("run_code: an error in the user's code reaches the model as readable text and the loop goes on", async () => {
    const model = fakeModel()
      .respondWithTools([{ name: "run_code", args: { code: "print('before')\ntotal = 1 / 0" } }])
      .respondWithTools([
        { name: "run_code", args: { code: "throw new TypeError('bad input')", language: "javascript" } },
      ])
      .respond(done("I see the errors."));
    const agent = createAgent({ model, tools: createKilnTools({ sandbox: box }) });
    const state = await agent.invoke({ messages: [new HumanMessage("Divide.")] });

    const python = lastToolMessage(model.calls[1]!.messages);
    expect(python.status).toBe("success");
    expect(python.content).toContain("stdout:\nbefore");
    expect(python.content).toContain("error: ZeroDivisionError: division by zero");
    expect(python.content).toContain("traceback:\nTraceback (most recent call last):");
    expect(python.content).toContain("total = 1 / 0");
    const js = lastToolMessage(model.calls[2]!.messages);
    expect(js.content).toContain("error: TypeError: bad input");
    expect(state.messages.at(-1)?.content).toBe("I see the errors.");
  });

  it("run_code: a cell over the time limit is stopped and the model is told", async () => {
    const { last } = await afterToolCalls(
      [{ name: "run_code", args: { code: "import time\nprint('start', flush=True)\ntime.sleep(30)" } }],
      { timeoutMs: 1_500 },
    );
    expect(last.content).toContain("stdout:\nstart");
    expect(last.content).toContain("The code was stopped: it ran longer than the 1.5 s limit.");
  });

  it("run_code: long output is cut to maxOutputChars with a note, keeping its start and end", async () => {
    const { last } = await afterToolCalls(
      [{ name: "run_code", args: { code: "print('HEAD' + 'x' * 50000 + 'TAIL')" } }],
      { maxOutputChars: 2_000 },
    );
    const text = textOf(last);
    expect(text.length).toBeLessThan(2_300);
    expect(text).toContain("stdout:\nHEAD");
    expect(text).toContain("TAIL");
    expect(text).toMatch(/\[\.\.\. \d+ characters cut here: output is limited to 2000 characters per stream/);
  });

  it("run_command: the model gets the exit code, stdout and stderr, also of a failing command", async () => {
    const { last: ok } = await afterToolCalls([{ name: "run_command", args: { command: "echo hi; whoami; pwd" } }]);
    expect(ok.content).toBe("exit code: 0\n\nstdout:\nhi\nkiln\n/workspace");

    const { last: failed } = await afterToolCalls([{ name: "run_command", args: { command: "ls /nope; exit 3" } }]);
    expect(failed.status).toBe("success");
    expect(failed.content).toMatch(/^exit code: 3\n\nstderr:\nls: cannot access '\/nope': No such file or directory$/);
  });

  it("read_file: text comes back as text, a missing file as a readable error", async () => {
    await box.files.write("notes/a.txt", "line 1\nline 2\n");
    const { last } = await afterToolCalls([{ name: "read_file", args: { path: "notes/a.txt" } }]);
    expect(last.content).toBe("line 1\nline 2\n");

    const { last: missing } = await afterToolCalls([{ name: "read_file", args: { path: "notes/none.txt" } }]);
    expect(missing.status).toBe("success");
    expect(missing.content).toBe("Error: No such file or directory in the sandbox: /workspace/notes/none.txt.");
  });

  it("read_file: a saved chart comes back as an image the model can look at", async () => {
    await box.runCode(
      "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.figure(); plt.plot([1, 2]); plt.savefig('chart.png'); plt.close('all')",
    );
    const { last } = await afterToolCalls([{ name: "read_file", args: { path: "/workspace/chart.png" } }]);
    expect(textOf(last)).toMatch(/^\/workspace\/chart\.png \(image\/png, [\d.]+ KiB\) \[image 1, attached\]$/);
    const [image] = imagesOf(last);
    expect(image?.mimeType).toBe("image/png");
    expect(isPng(image!.data)).toBe(true);
  });

  it("list_files: directories first, ending in '/'; files show their size", async () => {
    await box.files.write("listing/sub/x.txt", "x");
    await box.files.write("listing/b.csv", "a,b\n1,2\n");
    const { last } = await afterToolCalls([{ name: "list_files", args: { path: "listing" } }]);
    expect(last.content).toBe("/workspace/listing (2 entries):\nsub/\nb.csv  8 B");

    const { last: root } = await afterToolCalls([{ name: "list_files", args: {} }]);
    expect(root.content).toMatch(/^\/workspace \(\d+ entries\):\n/);
    expect(root.content).toContain("\nlisting/");
  });

  it("runs parallel tool calls of one model message, each answered by its own ToolMessage", async () => {
    const { sent } = await afterToolCalls([
      { name: "run_command", args: { command: "echo one" } },
      { name: "run_code", args: { code: "21 * 2" } },
    ]);
    const answers = toolMessages(sent);
    expect(answers.map((m) => [m.name, m.content])).toEqual([
      ["run_command", "exit code: 0\n\nstdout:\none"],
      ["run_code", "result:\n42"],
    ]);
  });

  it("an infrastructure fault (the sandbox is gone) surfaces as LangChain's tool error, status 'error'", async () => {
    const doomed = await sandbox(kiln);
    await doomed.delete();
    const model = fakeModel()
      .respondWithTools([{ name: "run_command", args: { command: "true" } }])
      .respond(done());
    const agent = createAgent({ model, tools: createKilnTools({ sandbox: doomed }) });
    await agent.invoke({ messages: [new HumanMessage("go")] });
    // Thrown by the tool; createAgent's ToolNode turns thrown errors into an error ToolMessage.
    const answer = lastToolMessage(model.calls[1]!.messages);
    expect(answer.status).toBe("error");
    expect(answer.content).toContain("SandboxNotFoundError");
  });
});
