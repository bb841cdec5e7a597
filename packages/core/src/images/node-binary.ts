/**
 * The Node binary baked into the runtime image, fetched from the npm registry with the host's
 * own npm (`npm pack node-linux-<arch>@24`), so no other download host is needed. Cached under
 * the user's cache directory; the tarball holds only `package/bin/node`. npm itself comes the
 * same way (`npm pack npm@11`: one tarball with its dependencies bundled, no install step).
 */
import { execFile } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";
import { ImageBuildError } from "../errors.ts";

const execFileAsync = promisify(execFile);

export const SANDBOX_NODE_MAJOR = 24;
/** npm in the runtime image (spec.npm of images.build, and `npm` in a sandbox). */
export const SANDBOX_NPM_MAJOR = 11;

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kiln");
}

/** Engine architecture ("x86_64", "aarch64") to the npm package's suffix. */
function npmArch(engineArch: string): string {
  if (engineArch === "x86_64" || engineArch === "amd64") return "x64";
  if (engineArch === "aarch64" || engineArch === "arm64") return "arm64";
  throw new ImageBuildError(`No Node ${SANDBOX_NODE_MAJOR} build for the engine's architecture ${engineArch}`);
}

/** Path of a Linux Node binary for the engine's architecture, fetching it once. */
export async function sandboxNodeBinary(engineArch: string, onLine: (line: string) => void): Promise<string> {
  const arch = npmArch(engineArch);
  const dir = cacheDir();
  const binary = join(dir, `node-v${SANDBOX_NODE_MAJOR}-linux-${arch}`);
  if (
    await stat(binary).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return binary;

  await mkdir(dir, { recursive: true });
  const work = join(dir, `pack-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    onLine(`fetching Node ${SANDBOX_NODE_MAJOR} for linux-${arch} (npm pack node-linux-${arch}@${SANDBOX_NODE_MAJOR})`);
    await execFileAsync(
      "npm",
      ["pack", "--silent", "--pack-destination", work, `node-linux-${arch}@${SANDBOX_NODE_MAJOR}`],
      {
        maxBuffer: 1024 * 1024,
      },
    ).catch((err: Error) => {
      throw new ImageBuildError(`npm pack node-linux-${arch}@${SANDBOX_NODE_MAJOR} failed: ${err.message}`, {
        cause: err,
      });
    });
    const tgz = (await readdir(work)).find((f) => f.endsWith(".tgz"));
    if (!tgz) throw new ImageBuildError("npm pack produced no tarball");
    const partial = `${binary}.part`;
    let found = false;
    const untar = extract();
    untar.on("entry", (header, stream, next) => {
      if (header.name === "package/bin/node") {
        found = true;
        pipeline(stream, createWriteStream(partial, { mode: 0o755 })).then(() => next(), next);
      } else {
        stream.resume();
        stream.on("end", next);
      }
    });
    await pipeline(createReadStream(join(work, tgz)), createGunzip(), untar);
    if (!found) throw new ImageBuildError(`${tgz} has no package/bin/node`);
    await rename(partial, binary);
    return binary;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Path of npm's own package tarball (`npm pack npm@11`), fetched once into the cache. */
export async function sandboxNpmTarball(onLine: (line: string) => void): Promise<string> {
  const dir = cacheDir();
  const tarball = join(dir, `npm-v${SANDBOX_NPM_MAJOR}.tgz`);
  if (
    await stat(tarball).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return tarball;
  await mkdir(dir, { recursive: true });
  const work = join(dir, `pack-npm-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    onLine(`fetching npm ${SANDBOX_NPM_MAJOR} (npm pack npm@${SANDBOX_NPM_MAJOR})`);
    await execFileAsync("npm", ["pack", "--silent", "--pack-destination", work, `npm@${SANDBOX_NPM_MAJOR}`], {
      maxBuffer: 1024 * 1024,
    }).catch((err: Error) => {
      throw new ImageBuildError(`npm pack npm@${SANDBOX_NPM_MAJOR} failed: ${err.message}`, { cause: err });
    });
    const tgz = (await readdir(work)).find((f) => f.endsWith(".tgz"));
    if (!tgz) throw new ImageBuildError("npm pack produced no tarball");
    await rename(join(work, tgz), tarball);
    return tarball;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Each regular file of an npm package tarball (under `package/`), as a path relative to the
 * package and its content, in tarball order; `skip` drops paths (e.g. docs).
 */
export async function* packageFiles(
  tarball: string,
  skip: (path: string) => boolean,
): AsyncGenerator<{ path: string; content: Buffer; executable: boolean }> {
  const untar = extract();
  const reading = pipeline(createReadStream(tarball), createGunzip(), untar);
  reading.catch(() => {}); // surfaced by the iteration below
  for await (const entry of untar) {
    const path = entry.header.name.replace(/^package\//, "");
    if (entry.header.type !== "file" || skip(path)) {
      entry.resume();
      continue;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    yield { path, content: Buffer.concat(chunks), executable: ((entry.header.mode ?? 0) & 0o111) !== 0 };
  }
  await reading;
}
