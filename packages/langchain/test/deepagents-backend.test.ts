// KilnSandboxBackend against real sandboxes: every method of deepagents' SandboxBackendProtocolV2
// (the three primitives it implements and the BaseSandbox operations built on them), then a
// deep agent (createDeepAgent) driven by LangChain's scripted fake model using it as its
// filesystem and shell.
import type { Sandbox } from "@kiln/core";
import { HumanMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { CompositeBackend, createDeepAgent, isSandboxBackend, StateBackend } from "deepagents";
import { beforeAll, describe, expect, it } from "vitest";
import { KilnSandboxBackend } from "../src/deepagents/index.ts";
import {
  deleteAfterwards,
  done,
  lastToolMessage,
  sandbox,
  TEST_LABELS,
  testKiln,
  textOf,
  uniqueId,
} from "./helpers.ts";

const kiln = testKiln();
let box: Sandbox;
let backend: KilnSandboxBackend;
const W = "/workspace";
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => new TextDecoder().decode(b ?? new Uint8Array());

beforeAll(async () => {
  box = await sandbox(kiln);
  backend = new KilnSandboxBackend(box, { timeoutMs: 5_000 });
});

describe("KilnSandboxBackend: the three primitives", () => {
  it("is a deepagents sandbox backend whose id is the sandbox id", () => {
    expect(isSandboxBackend(backend)).toBe(true);
    expect(backend.id).toBe(box.id);
    expect(backend.sandbox).toBe(box);
  });

  it("execute: runs sh -c in /workspace, stdout then stderr, with the exit code", async () => {
    expect(await backend.execute("pwd; whoami")).toEqual({ output: `${W}\nkiln\n`, exitCode: 0, truncated: false });
    const failed = await backend.execute("echo out; echo err >&2; exit 7");
    expect(failed).toEqual({ output: "out\nerr\n", exitCode: 7, truncated: false });
  });

  it("execute: a command over the time limit is killed, exitCode null and a note in the output", async () => {
    const quick = new KilnSandboxBackend(box, { timeoutMs: 500 });
    const result = await quick.execute("echo started; sleep 30");
    expect(result.exitCode).toBeNull();
    expect(result.output).toBe("started\n[command timed out after 0.5 s and was killed]");
  });

  it("execute: output beyond maxOutputBytes is cut and flagged truncated", async () => {
    const small = new KilnSandboxBackend(box, { maxOutputBytes: 1_000 });
    const result = await small.execute("head -c 5000 /dev/zero | tr '\\0' a");
    expect(result.truncated).toBe(true);
    expect(result.output.length).toBeLessThanOrEqual(1_000);
  });

  it("uploadFiles: writes each file, parents created, with per-file errors (partial success)", async () => {
    // The files are written concurrently, so the directory case is a directory that exists
    // beforehand: writing `up` as a file in the same batch as `up/a.txt` would race the mkdir.
    await box.exec("mkdir -p updir");
    const results = await backend.uploadFiles([
      [`${W}/up/a.txt`, bytes("alpha")],
      ["/etc/forbidden.txt", bytes("x")],
      [`${W}/up/../../etc/x`, bytes("x")],
      [`${W}/updir`, bytes("x")],
      ["up/b.bin", new Uint8Array([0, 1, 2, 255])],
    ]);
    expect(results).toEqual([
      { path: `${W}/up/a.txt`, error: null },
      { path: "/etc/forbidden.txt", error: "permission_denied" },
      { path: `${W}/up/../../etc/x`, error: "invalid_path" },
      { path: `${W}/updir`, error: "is_directory" },
      { path: "up/b.bin", error: null },
    ]);
    expect(await box.files.readText("up/a.txt")).toBe("alpha");
    expect([...(await box.files.read("up/b.bin"))]).toEqual([0, 1, 2, 255]);
  });

  it("downloadFiles: reads each file, with per-file errors (partial success)", async () => {
    await box.files.write("down/a.txt", "alpha");
    const results = await backend.downloadFiles([`${W}/down/a.txt`, `${W}/down/none.txt`, `${W}/down`, "/etc/shadow"]);
    expect(results.map((r) => [r.path, r.error])).toEqual([
      [`${W}/down/a.txt`, null],
      [`${W}/down/none.txt`, "file_not_found"],
      [`${W}/down`, "is_directory"],
      ["/etc/shadow", "permission_denied"],
    ]);
    expect(text(results[0]!.content)).toBe("alpha");
    expect(results.slice(1).every((r) => r.content === null)).toBe(true);
  });
});

describe("KilnSandboxBackend: BaseSandbox operations on a Kiln sandbox", () => {
  const dir = `${W}/ops`;
  beforeAll(async () => {
    await box.files.write("ops/src/main.py", "import os\nprint('hello')\n# TODO: more\n");
    await box.files.write("ops/src/util.py", "def todo():\n    return 'TODO'\n");
    await box.files.write("ops/README.md", "# ops\nTODO list\n");
    await box.files.write("ops/lines.txt", Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join("\n"));
    await box.files.write("ops/pixel.png", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });

  it("ls: the directory's entries, directories with a trailing slash", async () => {
    const { error, files } = await backend.ls(dir);
    expect(error).toBeUndefined();
    const byPath = Object.fromEntries((files ?? []).map((f) => [f.path, f]));
    expect(Object.keys(byPath).sort()).toEqual([
      `${dir}/README.md`,
      `${dir}/lines.txt`,
      `${dir}/pixel.png`,
      `${dir}/src/`,
    ]);
    expect(byPath[`${dir}/src/`]).toMatchObject({ is_dir: true });
    expect(byPath[`${dir}/README.md`]).toMatchObject({ is_dir: false, size: 16 });
    expect(Date.parse(byPath[`${dir}/README.md`]!.modified_at!)).toBeGreaterThan(Date.now() - 600_000);
  });

  it("read: numbered lines, paginated by offset and limit; a missing file is an error", async () => {
    const page = await backend.read(`${dir}/lines.txt`, 2, 3);
    expect(page.error).toBeUndefined();
    expect(page.content).toBe("     3\tline 3\n     4\tline 4\n     5\tline 5\n");
    expect(page).toMatchObject({ totalLines: 10, startLine: 3, endLine: 5, nextOffset: 5, mimeType: "text/plain" });
    expect((await backend.read(`${dir}/none.txt`)).error).toContain("not found");
  });

  it("read: a binary file comes back as bytes with its MIME type", async () => {
    const image = await backend.read(`${dir}/pixel.png`);
    expect(image.mimeType).toBe("image/png");
    expect([...(image.content as Uint8Array)].slice(0, 4)).toEqual([0x89, 0x50, 0x4e, 0x47]);
  });

  it("readRaw: the whole file as FileData", async () => {
    const { data, error } = await backend.readRaw(`${dir}/README.md`);
    expect(error).toBeUndefined();
    expect(data).toMatchObject({ content: "# ops\nTODO list\n", mimeType: "text/markdown" });
    expect((await backend.readRaw(`${dir}/none.md`)).error).toContain("not found");
  });

  it("grep: literal matches with path and line, filtered by glob and capped by maxCount", async () => {
    const all = await backend.grep("TODO", dir);
    expect(all.matches?.map((m) => `${m.path}:${m.line}`).sort()).toEqual([
      `${dir}/README.md:2`,
      `${dir}/src/main.py:3`,
      `${dir}/src/util.py:2`,
    ]);
    const py = await backend.grep("TODO", dir, "*.py");
    expect(py.matches?.map((m) => m.text).sort()).toEqual(["    return 'TODO'", "# TODO: more"]);
    const capped = await backend.grep("TODO", dir, null, 1);
    expect(capped).toMatchObject({ truncated: true });
    expect(capped.matches).toHaveLength(1);
    expect((await backend.grep("a.b(", dir)).matches).toEqual([]);
  });

  it("glob: files matching the pattern, relative to the base path", async () => {
    const { files } = await backend.glob("**/*.py", dir);
    expect(files?.map((f) => f.path).sort()).toEqual(["src/main.py", "src/util.py"]);
    const top = await backend.glob("*.md", dir);
    expect(top.files?.map((f) => f.path)).toEqual(["README.md"]);
  });

  it("write: creates or replaces a text file; a path the sandbox user may not write is an error", async () => {
    expect(await backend.write(`${dir}/new/notes.txt`, "first")).toEqual({
      path: `${dir}/new/notes.txt`,
      filesUpdate: null,
    });
    await backend.write(`${dir}/new/notes.txt`, "second");
    expect(await box.files.readText("ops/new/notes.txt")).toBe("second");
    expect((await backend.write("/root/x.txt", "x")).error).toContain("permission_denied");
  });

  it("edit: replaces one occurrence, all with replaceAll, and reports what it could not do", async () => {
    await backend.write(`${dir}/edit.txt`, "a-b-a-b");
    expect(await backend.edit(`${dir}/edit.txt`, "a-b-a", "x")).toMatchObject({ occurrences: 1 });
    expect(await box.files.readText("ops/edit.txt")).toBe("x-b");
    await backend.write(`${dir}/edit.txt`, "a-b-a-b");
    expect((await backend.edit(`${dir}/edit.txt`, "a", "z")).error).toContain("Multiple occurrences");
    expect(await backend.edit(`${dir}/edit.txt`, "a", "z", true)).toMatchObject({ occurrences: 2 });
    expect(await box.files.readText("ops/edit.txt")).toBe("z-b-z-b");
    expect((await backend.edit(`${dir}/edit.txt`, "nope", "x")).error).toContain("String not found");
    expect((await backend.edit(`${dir}/none.txt`, "a", "b")).error).toContain("not found");
  });

  it("delete: removes a file or a directory tree; a missing path is an error", async () => {
    await box.files.write("ops/trash/deep/x.txt", "x");
    await box.files.write("ops/single.txt", "x");
    expect(await backend.delete(`${dir}/single.txt`)).toEqual({ path: `${dir}/single.txt`, filesUpdate: null });
    expect(await backend.delete(`${dir}/trash`)).toMatchObject({ path: `${dir}/trash` });
    expect(await box.files.exists("ops/trash")).toBe(false);
    expect(await box.files.exists("ops/single.txt")).toBe(false);
    expect((await backend.delete(`${dir}/trash`)).error).toContain("not found");
  });
});

describe("KilnSandboxBackend.create", () => {
  it("makes a new sandbox, or finds the named one again", async () => {
    const name = uniqueId("deep");
    deleteAfterwards(kiln, name);
    const first = await KilnSandboxBackend.create(kiln, { name, labels: { ...TEST_LABELS }, timeoutMs: 5_000 });
    await first.write(`${W}/mark.txt`, "here");
    const again = await KilnSandboxBackend.create(kiln, { name });
    expect(again.id).toBe(first.id);
    expect((await again.readRaw(`${W}/mark.txt`)).data?.content).toBe("here");
  });
});

describe("KilnSandboxBackend under deepagents' CompositeBackend", () => {
  it("stays the shell and the default filesystem when other paths are routed elsewhere", async () => {
    const composite = new CompositeBackend(backend, {
      "/large_tool_results/": new StateBackend(),
      "/conversation_history/": new StateBackend(),
    });
    expect(isSandboxBackend(composite)).toBe(true);
    expect(composite.id).toBe(box.id);
    expect((await composite.execute("echo routed")).output).toBe("routed\n");
    await composite.write(`${W}/routed.txt`, "in the sandbox");
    expect(await box.files.readText("routed.txt")).toBe("in the sandbox");
  });
});

describe("a deep agent on a Kiln sandbox", () => {
  it("writes a script, runs it with execute and reads the result, all inside the sandbox", async () => {
    const script = "import json\nprint(json.dumps({'sum': sum(range(10))}))\n";
    const model = fakeModel()
      .respondWithTools([{ name: "write_file", args: { file_path: `${W}/agent/sum.py`, content: script } }])
      .respondWithTools([{ name: "execute", args: { command: `python3 ${W}/agent/sum.py > ${W}/agent/out.json` } }])
      .respondWithTools([{ name: "read_file", args: { file_path: `${W}/agent/out.json` } }])
      .respondWithTools([{ name: "ls", args: { path: `${W}/agent` } }])
      .respond(done("The sum is 45."));
    const agent = createDeepAgent({ model, backend, systemPrompt: `Work in ${W}.` });
    const result = await agent.invoke({ messages: [new HumanMessage("Sum 0..9 with Python.")] });

    expect(model.callCount).toBe(5);
    expect(lastToolMessage(model.calls[1]!.messages).content).toContain(`Successfully wrote to '${W}/agent/sum.py'`);
    expect(lastToolMessage(model.calls[2]!.messages).content).toBe("\n[Command succeeded with exit code 0]");
    expect(textOf(lastToolMessage(model.calls[3]!.messages))).toContain('{"sum": 45}');
    const listing = textOf(lastToolMessage(model.calls[4]!.messages));
    expect(listing).toContain(`${W}/agent/sum.py`);
    expect(listing).toContain(`${W}/agent/out.json`);
    expect(result.messages.at(-1)?.content).toBe("The sum is 45.");
    // The files are really in the sandbox, not in the agent's state.
    expect(await box.files.readText("agent/out.json")).toBe('{"sum": 45}\n');
  });
});
