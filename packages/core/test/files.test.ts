import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileNotFoundError, InvalidArgumentError, type Sandbox } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();
let sb: Sandbox;
let local: string;
beforeAll(async () => {
  sb = await sandbox(kiln);
  local = await mkdtemp(join(tmpdir(), "kiln-files-"));
});
afterAll(() => rm(local, { recursive: true, force: true }));

describe("files", () => {
  it("writes and reads text and binary, creating parents", async () => {
    await sb.files.write("notes/deep/hello.txt", "héllo\n");
    expect(await sb.files.readText("/workspace/notes/deep/hello.txt")).toBe("héllo\n");
    const bytes = new Uint8Array(256 * 3).map((_, i) => i % 256);
    await sb.files.write("bin.dat", bytes);
    expect(Buffer.from(await sb.files.read("bin.dat")).equals(Buffer.from(bytes))).toBe(true);
    // Written files belong to the sandbox user, so its commands can use them.
    expect((await sb.exec("stat -c %U notes/deep/hello.txt && cat notes/deep/hello.txt")).stdout).toBe("kiln\nhéllo\n");
  });

  it("streams a large file both ways intact", async () => {
    const size = 24 * 1024 * 1024 + 123;
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) big.writeUInt32LE(i, i);
    await sb.files.write("big.bin", big);
    expect((await sb.exec("stat -c %s big.bin")).stdout.trim()).toBe(String(size));
    const back = Buffer.from(await sb.files.read("big.bin"));
    expect(back.length).toBe(size);
    expect(back.equals(big)).toBe(true);
  });

  it("lists, stats, checks existence, makes and removes directories", async () => {
    await sb.files.mkdir("tree/a/b");
    await sb.files.write("tree/file.txt", "x");
    await sb.exec("ln -s file.txt tree/link");
    const entries = await sb.files.list("tree");
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ["a", "directory"],
      ["file.txt", "file"],
      ["link", "symlink"],
    ]);
    const file = await sb.files.stat("tree/file.txt");
    expect(file).toMatchObject({ name: "file.txt", path: "/workspace/tree/file.txt", type: "file", size: 1 });
    expect(Date.parse(file.modifiedAt)).toBeGreaterThan(0);
    expect(await sb.files.exists("tree/a/b")).toBe(true);
    expect(await sb.files.exists("tree/nope")).toBe(false);
    await expect(sb.files.remove("tree")).rejects.toThrow(/ENOTEMPTY|not empty/i);
    await sb.files.remove("tree/link");
    expect(await sb.files.exists("tree/file.txt")).toBe(true);
    await sb.files.remove("tree", { recursive: true });
    expect(await sb.files.exists("tree")).toBe(false);
  });

  it("lists a directory too large for one reply", async () => {
    await sb.exec("mkdir many && cd many && seq -f 'file-with-a-longish-name-%05g.txt' 1 3000 | xargs touch");
    const entries = await sb.files.list("many");
    expect(entries).toHaveLength(3000);
    expect(entries[2999]?.name).toBe("file-with-a-longish-name-03000.txt");
  });

  it("gives FileNotFoundError for missing paths", async () => {
    await expect(sb.files.read("missing.txt")).rejects.toThrow(FileNotFoundError);
    await expect(sb.files.stat("missing.txt")).rejects.toThrow(FileNotFoundError);
    await expect(sb.files.list("missing-dir")).rejects.toThrow(FileNotFoundError);
    await expect(sb.files.remove("missing.txt")).rejects.toThrow(FileNotFoundError);
  });

  it("refuses hostile paths naming the field", async () => {
    await expect(sb.files.read("../etc/passwd")).rejects.toThrow(InvalidArgumentError);
    await expect(sb.files.write("a/../../x", "x")).rejects.toThrow(/path/);
    await expect(sb.files.read("bad\0name")).rejects.toThrow(/NUL/);
    await expect(sb.files.write(7 as never, "x")).rejects.toThrow(/path/);
    await expect(sb.files.write("ok.txt", { not: "bytes" } as never)).rejects.toThrow(/content/);
    await expect(sb.files.remove("/")).rejects.toThrow(InvalidArgumentError);
  });

  it("reads only what the sandbox user may: a link to /etc/shadow yields a refusal", async () => {
    await sb.exec("ln -sf /etc/shadow shadow-link");
    await expect(sb.files.read("shadow-link")).rejects.toThrow(/EACCES|denied/i);
  });

  it("uploads a directory and downloads it back; symlinks never leave the sandbox", async () => {
    const src = join(local, "src");
    await mkdir(join(src, "nested"), { recursive: true });
    await writeFile(join(src, "a.txt"), "alpha");
    await writeFile(join(src, "nested", "b.bin"), Buffer.from([0, 1, 2, 255]));
    await sb.files.upload(src, "project");
    expect(await sb.files.readText("project/a.txt")).toBe("alpha");
    expect(Array.from(await sb.files.read("project/nested/b.bin"))).toEqual([0, 1, 2, 255]);

    await sb.exec("ln -s /etc/passwd project/escape && ln -s ../../.. project/nested/up");
    const dest = join(local, "dest");
    await sb.files.download("project", dest);
    expect(await readFile(join(dest, "a.txt"), "utf8")).toBe("alpha");
    expect(Array.from(await readFile(join(dest, "nested", "b.bin")))).toEqual([0, 1, 2, 255]);
    expect((await readdir(dest)).sort()).toEqual(["a.txt", "nested"]);
    expect(await readdir(join(dest, "nested"))).toEqual(["b.bin"]);

    await sb.files.download("project/a.txt", join(local, "single.txt"));
    expect(await readFile(join(local, "single.txt"), "utf8")).toBe("alpha");
  });

  it("refuses to upload local symlinks", async () => {
    const src = join(local, "with-link");
    await mkdir(src, { recursive: true });
    await writeFile(join(src, "ok.txt"), "ok");
    await symlink("/etc/hostname", join(src, "host-link"));
    await expect(sb.files.upload(src, "linked")).rejects.toThrow(/symlink/);
    await expect(sb.files.upload(join(src, "host-link"), "one")).rejects.toThrow(/symlink/);
  });
});
