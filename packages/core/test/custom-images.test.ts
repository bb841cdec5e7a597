// kiln.images.build/list/delete and create({ image: name }) against the real engine, no registry:
// the apt step reaches the Debian mirror the machine's image builds use; the pip package is a
// wheel made here and installed with --no-index.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { CustomImages } from "../src/images/custom-images.ts";
import { RuntimeImages } from "../src/images/runtime-image.ts";
import { ImageBuildError, type ImageProgressEvent, InvalidArgumentError } from "../src/index.ts";
import { sandbox, testKiln, uniqueName } from "./helpers.ts";

const kiln = testKiln();
const built: string[] = [];
afterAll(async () => {
  for (const name of built) await kiln.images.delete(name).catch(() => {});
});

/** A pure-Python wheel, made with the host's python3 (zipfile only, no pip or network). */
async function wheel(): Promise<{ file: string; content: Uint8Array }> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-wheel-"));
  try {
    const script = `
import base64, hashlib, sys, zipfile
files = {
  "kilntestpkg/__init__.py": "def answer():\\n    return 42\\n",
  "kilntestpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: kilntestpkg\\nVersion: 1.0\\n",
  "kilntestpkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: kiln-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for name, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(text.encode())}")
record.append("kilntestpkg-1.0.dist-info/RECORD,,")
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
    z.writestr("kilntestpkg-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
`;
    const file = join(dir, "kilntestpkg-1.0-py3-none-any.whl");
    execFileSync("python3", ["-c", script, file]);
    return { file: "kilntestpkg-1.0-py3-none-any.whl", content: new Uint8Array(await readFile(file)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("images.build", () => {
  it("builds on the runtime image with an apt and a pip package, used by runCode; an unchanged spec is found without rebuilding", async () => {
    const name = uniqueName("ds");
    built.push(name);
    const whl = await wheel();
    const spec = {
      name,
      apt: ["jq"],
      files: { [`/opt/wheels/${whl.file}`]: whl.content, "/etc/kiln-test.txt": "hello from files" },
      pip: ["--no-index", `/opt/wheels/${whl.file}`],
      env: { KILN_CUSTOM: "yes" },
    };
    const events: ImageProgressEvent[] = [];
    const first = await kiln.images.build(spec, { onProgress: (e) => events.push(e) });
    expect(first.name).toBe(name);
    expect(first.tag).toMatch(new RegExp(`^kiln-image-${name}:[0-9a-f]{16}$`));
    expect(events.at(-1)?.phase).toBe("done");

    const sb = await sandbox(kiln, { image: name });
    const result = await sb.runCode(
      "import kilntestpkg, os, subprocess\n" +
        "[kilntestpkg.answer(), subprocess.run(['jq', '-n', '6*7'], capture_output=True, text=True).stdout.strip(), os.environ['KILN_CUSTOM'], open('/etc/kiln-test.txt').read()]",
    );
    expect(result.status).toBe("ok");
    expect(result.results[0]?.text).toBe("[42, '42', 'yes', 'hello from files']");
    expect((await sb.info()).image).toBe(first.tag);
    await sb.delete(); // so afterAll can delete the image

    // Unchanged: the same tag, found in milliseconds, no build step.
    const again: ImageProgressEvent[] = [];
    const started = performance.now();
    const second = await kiln.images.build(spec, { onProgress: (e) => again.push(e) });
    const elapsed = performance.now() - started;
    expect(second.tag).toBe(first.tag);
    expect(again.filter((e) => e.phase === "build")).toEqual([]);
    expect(elapsed).toBeLessThan(2000);

    expect((await kiln.images.list()).find((i) => i.name === name)?.tag).toBe(first.tag);
  }, 600_000);

  it("installs spec.npm packages on the default image from the registry this machine's npm uses; require() finds them in a JS cell", async () => {
    const name = uniqueName("npm");
    built.push(name);
    // The registry of the host's npm configuration, read now (never written in the repository).
    const registry = execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).trim();
    const { tag } = await kiln.images.build({ name, npm: ["is-number@7"] });
    const history = execFileSync("docker", ["history", "--no-trunc", "--format", "{{.CreatedBy}}", tag], {
      encoding: "utf8",
    });
    expect(history).toContain(`npm install -g`);
    expect(history).toContain(`--registry='${registry}'`);

    const sb = await sandbox(kiln, { image: name });
    const run = await sb.runCode("const isNumber = require('is-number'); [isNumber(42), isNumber('x')]", {
      language: "javascript",
    });
    expect(run.status).toBe("ok");
    expect(run.results[0]?.text).toBe("[ true, false ]");
    // npm itself is in the sandbox, for the sandbox user.
    const npm = await sb.exec("npm --version && id -u");
    expect(npm.exitCode).toBe(0);
    expect(npm.stdout).toMatch(/^11\.\d+\.\d+\n1000\n$/);
    await sb.delete();
  }, 600_000);

  it("builds from a plain Debian image (the debootstrapped base): Kiln adds its agent, and Python, JS and TS run", async () => {
    const name = uniqueName("plain");
    built.push(name);
    const base = "kiln-base:bookworm";
    expect(await kiln.engine.imageExists(base)).toBe(true);
    // Without Kiln's agent, a sandbox cannot start from it: a clear error.
    const refused = await kiln.create({ image: base }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InvalidArgumentError);
    expect((refused as Error).message).toContain("images.build(");
    expect((refused as Error).message).toContain(`from: "${base}"`);

    const { tag } = await kiln.images.build({ name, from: base, run: ["echo built > /etc/kiln-plain"] });
    const sb = await sandbox(kiln, { image: name });
    expect((await sb.runCode("open('/etc/kiln-plain').read().strip()")).results[0]?.text).toBe("'built'");
    expect((await sb.runCode("[1, 2].map((n) => n * 21)[1]", { language: "javascript" })).results[0]?.text).toBe("42");
    expect((await sb.runCode("const n: number = 6 * 7; n", { language: "typescript" })).results[0]?.text).toBe("42");
    expect((await sb.info()).image).toBe(tag);
    await sb.delete();
  }, 600_000);

  it("a failing step gives ImageBuildError with the step's output", async () => {
    const name = uniqueName("broken");
    built.push(name);
    const err = await kiln.images
      .build({ name, run: ["echo kiln-step-output-marker && exit 3"] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageBuildError);
    expect((err as Error).message).toContain("kiln-step-output-marker");
    expect((await kiln.images.list()).some((i) => i.name === name)).toBe(false);
  }, 300_000);

  it("builds from a Dockerfile and context; delete() removes it and create() then fails", async () => {
    const name = uniqueName("dockerfile");
    built.push(name);
    const dir = await mkdtemp(join(tmpdir(), "kiln-ctx-"));
    try {
      await writeFile(join(dir, "greeting.txt"), "from the context\n");
      await writeFile(join(dir, "Dockerfile"), `FROM ${inject("runtimeImage")}\nCOPY greeting.txt /etc/greeting.txt\n`);
      const { tag } = await kiln.images.build({ name, dockerfile: join(dir, "Dockerfile"), context: dir });
      {
        await using sb = await sandbox(kiln, { image: name });
        expect((await sb.runCode("open('/etc/greeting.txt').read().strip()")).results[0]?.text).toBe(
          "'from the context'",
        );
      }
      await kiln.images.delete(name);
      expect(await kiln.engine.imageExists(tag)).toBe(false);
      await expect(kiln.create({ image: name })).rejects.toThrow(/images\.build/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("a rebuild keeps the previous tag while a sandbox uses it; prune() removes it once unused, never the newest", async () => {
    const name = uniqueName("stale");
    built.push(name);
    const first = await kiln.images.build({ name, run: ["echo one > /etc/kiln-v"] });
    const sb = await sandbox(kiln, { image: name });
    const second = await kiln.images.build({ name, run: ["echo two > /etc/kiln-v"] });
    expect(second.tag).not.toBe(first.tag);
    expect(await kiln.engine.imageExists(first.tag)).toBe(true); // in use
    // The custom half of kiln.images.prune() (its runtime half would remove other checkouts'
    // unused runtime images on this shared engine).
    const custom = new CustomImages(kiln.engine, new RuntimeImages(kiln.engine));
    expect(await custom.pruneStale()).not.toContain(first.tag);
    await sb.delete();
    const removed = await custom.pruneStale();
    expect(removed).toContain(first.tag);
    expect(removed).not.toContain(second.tag);
    expect(await kiln.engine.imageExists(second.tag)).toBe(true);
    expect((await kiln.images.list()).find((i) => i.name === name)?.tag).toBe(second.tag);
  }, 300_000);
});
