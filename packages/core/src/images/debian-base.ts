/**
 * A Debian bookworm base image made without any container registry: debootstrap a minimal root
 * filesystem (Linux, root), then import it into the engine as an image.
 */
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Engine } from "../engine/engine.ts";
import { ImageBuildError } from "../errors.ts";

const SUITE = "bookworm";

/** The mirror debootstrap fetches from: KILN_DEBIAN_MIRROR, else the host's own apt source, else debootstrap's default. */
export async function debianMirror(): Promise<string | undefined> {
  if (process.env.KILN_DEBIAN_MIRROR) return process.env.KILN_DEBIAN_MIRROR;
  const candidates: string[] = [];
  const dir = "/etc/apt/sources.list.d";
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (file.endsWith(".sources")) candidates.push(await readFile(join(dir, file), "utf8").catch(() => ""));
  }
  for (const text of candidates) {
    // deb822 format: a stanza with "URIs:" whose suite list names bookworm (not -security).
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.includes(SUITE)) return uri;
    }
  }
  const list = await readFile("/etc/apt/sources.list", "utf8").catch(() => "");
  const line = list.split("\n").find((l) => new RegExp(`^deb\\s+(\\[[^\\]]*\\]\\s+)?\\S+\\s+${SUITE}\\s`).test(l));
  return line?.split(/\s+/).find((part) => /^https?:\/\//.test(part));
}

function run(command: string, args: string[], onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const collect = (line: string) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      onLine(line);
    };
    createInterface({ input: child.stdout }).on("line", collect);
    createInterface({ input: child.stderr }).on("line", collect);
    child.on("error", (err) =>
      reject(new ImageBuildError(`${command} could not start: ${err.message}`, { cause: err })),
    );
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${command} exited with ${code}:\n${tail.join("\n")}`));
    });
  });
}

async function commandExists(command: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${command}`], () => {});
    return true;
  } catch {
    return false;
  }
}

/** Bootstraps Debian bookworm (python3 and CA certificates included) and imports it as `tag`. */
export async function bootstrapDebianBase(engine: Engine, tag: string, onLine: (line: string) => void): Promise<void> {
  if (process.platform !== "linux" || process.getuid?.() !== 0 || !(await commandExists("debootstrap"))) {
    throw new ImageBuildError(
      "No Debian base image: none is present, none could be pulled, and building one needs debootstrap as root on Linux. " +
        "Run `bash scripts/setup.sh` as root on Debian/Ubuntu, or load a debian:bookworm-slim image into the engine (docker load), then retry.",
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "kiln-rootfs-"));
  try {
    const mirror = await debianMirror();
    const args = ["--variant=minbase", "--include=python3,ca-certificates", SUITE, dir];
    if (mirror) args.push(mirror);
    await run("debootstrap", args, onLine);
    // mkdtemp made the root 0700: overlay2 hides that, but btrfs and gVisor see it, and then the
    // unprivileged sandbox user cannot reach anything under /.
    await chmod(dir, 0o755);
    onLine(`importing the root filesystem as ${tag}`);
    const tar = spawn("tar", ["-C", dir, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<void>((resolve, reject) =>
      tar.on("close", (code) => (code === 0 ? resolve() : reject(new ImageBuildError(`tar exited with ${code}`)))),
    );
    await Promise.all([engine.importImage(tar.stdout, tag), exited]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
