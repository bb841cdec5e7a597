// sandbox.files through a real Kiln server: every method, errors by code, and a large file
// round trip that streams both ways (this process's memory stays flat).
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileNotFoundError, InvalidArgumentError, Kiln, PayloadTooLargeError, SandboxFileError } from "@kiln/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteKiln, sandbox, TEST_LABELS } from "./helpers.ts";
import { testServer } from "./server.ts";

const kiln = remoteKiln();
let sb: Awaited<ReturnType<typeof sandbox>>;
let local: string;
beforeAll(async () => {
  sb = await sandbox(kiln);
  local = await mkdtemp(join(tmpdir(), "kiln-remote-files-"));
});
afterAll(() => rm(local, { recursive: true, force: true }));

describe("remote files", () => {
  it("writes, reads, stats, lists, checks, makes and removes", async () => {
    await sb.files.write("dir/a.txt", "hello ✓");
    await sb.files.write("/workspace/dir/b.bin", new Uint8Array([0, 1, 2, 255]));
    expect(await sb.files.readText("dir/a.txt")).toBe("hello ✓");
    expect([...(await sb.files.read("dir/b.bin"))]).toEqual([0, 1, 2, 255]);
    expect(await sb.files.stat("dir/a.txt")).toMatchObject({
      name: "a.txt",
      path: "/workspace/dir/a.txt",
      type: "file",
      size: Buffer.byteLength("hello ✓"),
    });
    expect((await sb.files.list("dir")).map((e) => e.name).sort()).toEqual(["a.txt", "b.bin"]);
    expect(await sb.files.exists("dir/a.txt")).toBe(true);
    expect(await sb.files.exists("dir/none")).toBe(false);
    await sb.files.mkdir("made/deep/er");
    expect((await sb.files.stat("made/deep/er")).type).toBe("directory");
    await sb.files.write("empty.txt", "");
    expect(await sb.files.readText("empty.txt")).toBe("");
    // Written as the sandbox user, visible to commands.
    expect((await sb.exec("cat dir/a.txt && stat -c %u dir/a.txt")).stdout).toBe("hello ✓1000\n");

    const notEmpty = await sb.files.remove("dir").catch((e: unknown) => e);
    expect(notEmpty).toBeInstanceOf(SandboxFileError);
    await sb.files.remove("dir", { recursive: true });
    expect(await sb.files.exists("dir")).toBe(false);
  });

  it("answers missing files and bad paths with the in-process classes", async () => {
    const missing = await sb.files.read("nope.txt").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(FileNotFoundError);
    expect((missing as FileNotFoundError).path).toBe("/workspace/nope.txt");
    await expect(sb.files.stat("nope")).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
    await expect(sb.files.list("nope")).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(sb.files.read("/workspace")).rejects.toMatchObject({ code: "FILE_ERROR" });
    await expect(sb.files.read("../etc/passwd")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sb.files.remove("/")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("uploads and downloads files and directories, skipping sandbox symlinks", async () => {
    const tree = join(local, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    await writeFile(join(tree, "top.txt"), "top");
    await writeFile(join(tree, "sub", "inner.txt"), "inner");
    await sb.files.upload(tree, "up");
    expect(await sb.files.readText("up/sub/inner.txt")).toBe("inner");
    await sb.files.upload(join(tree, "top.txt"), "single.txt");
    expect(await sb.files.readText("single.txt")).toBe("top");

    await sb.exec("ln -s /etc/passwd up/link && mkdir -p up/empty");
    const back = join(local, "back");
    await sb.files.download("up", back);
    expect(await readFile(join(back, "top.txt"), "utf8")).toBe("top");
    expect(await readFile(join(back, "sub", "inner.txt"), "utf8")).toBe("inner");
    expect((await stat(join(back, "empty"))).isDirectory()).toBe(true);
    await expect(stat(join(back, "link"))).rejects.toMatchObject({ code: "ENOENT" });
    await sb.files.download("single.txt", join(local, "single.txt"));
    expect(await readFile(join(local, "single.txt"), "utf8")).toBe("top");

    await symlink(join(tree, "top.txt"), join(local, "link"));
    await expect(sb.files.upload(join(local, "link"), "l")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sb.files.download("nope", join(local, "x"))).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it("round-trips a 128 MiB file streamed both ways, without holding it in memory", async () => {
    const size = 128 * 1024 * 1024;
    const source = join(local, "big.bin");
    const chunk = Buffer.alloc(1024 * 1024);
    const hash = createHash("sha256");
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(source);
      out.on("error", reject);
      let written = 0;
      const more = () => {
        while (written < size) {
          chunk.fill(written / chunk.length);
          hash.update(chunk);
          written += chunk.length;
          if (!out.write(Buffer.from(chunk))) return void out.once("drain", more);
        }
        out.end(resolve);
      };
      more();
    });
    const expected = hash.digest("hex");

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      await sb.files.upload(source, "big.bin");
      expect((await sb.files.stat("big.bin")).size).toBe(size);
      await sb.files.download("big.bin", join(local, "big-back.bin"));
    } finally {
      clearInterval(sampler);
    }
    const back = createHash("sha256");
    for await (const part of createReadStream(join(local, "big-back.bin"))) back.update(part as Buffer);
    expect(back.digest("hex")).toBe(expected);
    expect((await sb.exec("sha256sum big.bin")).stdout.split(" ")[0]).toBe(expected);
    // The file is 128 MiB; the client's memory grew by far less than that.
    expect(peak - baseline).toBeLessThan(48 * 1024 * 1024);
    await sb.files.remove("big.bin");
  }, 240_000);
});

describe("upload limit", () => {
  it("a file over the server's upload limit is refused with PAYLOAD_TOO_LARGE before it is sent", async () => {
    const small = await testServer({ maxUploadMb: 1 });
    try {
      const limited = new Kiln({ url: small.url, apiKey: small.apiKey });
      const target = await limited.create({ labels: TEST_LABELS });
      try {
        const file = join(local, "two-mb.bin");
        await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 1));
        const err = await target.files.upload(file, "two.bin").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PayloadTooLargeError);
        expect((err as PayloadTooLargeError).code).toBe("PAYLOAD_TOO_LARGE");
        await expect(target.files.write("w.bin", new Uint8Array(2 * 1024 * 1024))).rejects.toMatchObject({
          code: "PAYLOAD_TOO_LARGE",
        });
        await target.files.write("ok.bin", new Uint8Array(1000));
        expect(await target.files.exists("two.bin")).toBe(false);
      } finally {
        await target.delete();
      }
    } finally {
      await small.close();
    }
  });
});
