// KilnFilesystem honours Mastra's WorkspaceFilesystem contract on a real sandbox's files.
import type { Sandbox } from "@kiln/core";
import {
  DirectoryNotEmptyError,
  DirectoryNotFoundError,
  FileExistsError,
  FileNotFoundError,
  IsDirectoryError,
  NotDirectoryError,
  StaleFileError,
  WorkspaceReadOnlyError,
} from "@mastra/core/workspace";
import { beforeAll, describe, expect, it } from "vitest";
import { KilnFilesystem, KilnSandbox, sandboxNameFor } from "../src/index.ts";
import { cleanUpNamed, sandbox, TEST_LABELS, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();
let box: Sandbox;
let fs: KilnFilesystem;
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

beforeAll(async () => {
  box = await sandbox(kiln);
  fs = new KilnFilesystem({ sandbox: box });
});

describe("files", () => {
  it("writes and reads text and bytes; relative paths are under /workspace", async () => {
    await fs.writeFile("notes/a.txt", "héllo");
    expect(await fs.readFile("notes/a.txt", { encoding: "utf-8" })).toBe("héllo");
    expect(await fs.readFile("/workspace/notes/a.txt")).toEqual(Buffer.from("héllo"));
    await fs.writeFile("img.png", PNG);
    expect(Buffer.compare((await fs.readFile("img.png")) as Buffer, PNG)).toBe(0);
    expect(await fs.readFile("img.png", { encoding: "base64" })).toBe(PNG.toString("base64"));
    expect((await box.exec("cat notes/a.txt")).stdout).toBe("héllo");
  });

  it("honours recursive, overwrite and expectedMtime", async () => {
    await expect(fs.writeFile("missing/dir/x.txt", "x", { recursive: false })).rejects.toBeInstanceOf(
      DirectoryNotFoundError,
    );
    await fs.writeFile("once.txt", "1");
    await expect(fs.writeFile("once.txt", "2", { overwrite: false })).rejects.toBeInstanceOf(FileExistsError);
    const { modifiedAt } = await fs.stat("once.txt");
    await fs.writeFile("once.txt", "3", { expectedMtime: modifiedAt });
    await expect(fs.writeFile("once.txt", "4", { expectedMtime: new Date(0) })).rejects.toBeInstanceOf(StaleFileError);
    expect(await fs.readFile("once.txt", { encoding: "utf8" })).toBe("3");
  });

  it("appends, deletes, copies and moves", async () => {
    await fs.appendFile("log/out.log", "a\n");
    await fs.appendFile("log/out.log", Buffer.from("b\n"));
    expect(await fs.readFile("log/out.log", { encoding: "utf8" })).toBe("a\nb\n");

    await fs.copyFile("log/out.log", "copies/out.log");
    await expect(fs.copyFile("log/out.log", "copies/out.log", { overwrite: false })).rejects.toBeInstanceOf(
      FileExistsError,
    );
    await expect(fs.copyFile("log", "log2")).rejects.toBeInstanceOf(IsDirectoryError);
    await fs.copyFile("log", "log2", { recursive: true });
    expect(await fs.exists("log2/out.log")).toBe(true);

    await fs.moveFile("copies/out.log", "moved/out.log");
    expect(await fs.exists("copies/out.log")).toBe(false);
    expect(await fs.readFile("moved/out.log", { encoding: "utf8" })).toBe("a\nb\n");
    await expect(fs.moveFile("nope", "x")).rejects.toBeInstanceOf(FileNotFoundError);

    await fs.deleteFile("moved/out.log");
    await expect(fs.deleteFile("moved/out.log")).rejects.toBeInstanceOf(FileNotFoundError);
    await fs.deleteFile("moved/out.log", { force: true });
    await expect(fs.deleteFile("log")).rejects.toBeInstanceOf(IsDirectoryError);
    await expect(fs.readFile("log")).rejects.toBeInstanceOf(IsDirectoryError);
    await expect(fs.readFile("no-such-file")).rejects.toBeInstanceOf(FileNotFoundError);
  });
});

describe("directories", () => {
  it("makes, lists (flat, recursive, by extension) and removes directories", async () => {
    await fs.mkdir("tree/sub/deep");
    await fs.writeFile("tree/a.py", "print(1)");
    await fs.writeFile("tree/b.csv", "x\n1\n");
    await fs.writeFile("tree/sub/c.py", "");
    await fs.mkdir("tree/sub"); // existing directory: fine
    await expect(fs.mkdir("tree/a.py")).rejects.toBeInstanceOf(FileExistsError);
    await expect(fs.mkdir("nowhere/x", { recursive: false })).rejects.toBeInstanceOf(DirectoryNotFoundError);

    const flat = await fs.readdir("tree");
    expect(flat.map((e) => `${e.type}:${e.name}`).sort()).toEqual(["directory:sub", "file:a.py", "file:b.csv"]);
    expect(flat.find((e) => e.name === "b.csv")?.size).toBe(4);
    const deep = await fs.readdir("tree", { recursive: true, extension: ".py" });
    expect(deep.map((e) => e.name).sort()).toEqual(["a.py", "sub", "sub/c.py", "sub/deep"]);
    expect((await fs.readdir("tree", { recursive: true, maxDepth: 0 })).map((e) => e.name)).not.toContain("sub/c.py");
    await expect(fs.readdir("tree/a.py")).rejects.toBeInstanceOf(NotDirectoryError);
    await expect(fs.readdir("no-dir")).rejects.toBeInstanceOf(DirectoryNotFoundError);

    await expect(fs.rmdir("tree")).rejects.toBeInstanceOf(DirectoryNotEmptyError);
    await expect(fs.rmdir("tree/a.py")).rejects.toBeInstanceOf(NotDirectoryError);
    await fs.rmdir("tree/sub/deep");
    await fs.rmdir("tree", { recursive: true });
    expect(await fs.exists("tree")).toBe(false);
    await expect(fs.rmdir("tree")).rejects.toBeInstanceOf(DirectoryNotFoundError);
    await fs.rmdir("tree", { force: true });
  });

  it("stats with a MIME type, resolves real paths", async () => {
    await fs.writeFile("charts/c.png", PNG);
    const stat = await fs.stat("charts/c.png");
    expect(stat).toMatchObject({ name: "c.png", path: "/workspace/charts/c.png", type: "file", size: PNG.length });
    expect(stat.mimeType).toBe("image/png");
    expect(stat.modifiedAt).toBeInstanceOf(Date);
    expect((await fs.stat("charts")).type).toBe("directory");
    await expect(fs.stat("charts/none.png")).rejects.toBeInstanceOf(FileNotFoundError);
    await box.exec("ln -s charts/c.png link.png");
    expect(await fs.realpath("link.png")).toBe("/workspace/charts/c.png");
  });
});

describe("modes and sources", () => {
  it("refuses writes when read-only", async () => {
    const readOnly = new KilnFilesystem({ sandbox: box, readOnly: true });
    await expect(readOnly.writeFile("x", "x")).rejects.toBeInstanceOf(WorkspaceReadOnlyError);
    await expect(readOnly.mkdir("x")).rejects.toBeInstanceOf(WorkspaceReadOnlyError);
    expect(await readOnly.exists("once.txt")).toBe(true);
    expect(readOnly.getInstructions()).toMatch(/read-only/);
  });

  it("shares a KilnSandbox's container, starting it on first use", async () => {
    const id = uniqueName("fs-ks");
    cleanUpNamed(kiln, sandboxNameFor(id));
    const workspaceSandbox = new KilnSandbox({ kiln, id, sandboxOptions: { labels: TEST_LABELS } });
    const shared = new KilnFilesystem({ sandbox: workspaceSandbox });
    await shared.writeFile("shared.txt", "same files");
    expect(workspaceSandbox.status).toBe("running");
    expect((await workspaceSandbox.executeCommand("cat shared.txt")).stdout).toBe("same files");
    expect(shared.getInfo()).toMatchObject({ provider: "kiln", readOnly: false, metadata: { sandbox: id } });
    await workspaceSandbox._destroy();
  });
});
