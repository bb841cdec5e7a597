/**
 * cp SRC DST: files and directories between this machine and a sandbox, as `docker cp`:
 * ID:/path names a sandbox path; into an existing directory the source goes inside it under its
 * base name, otherwise DST is the new name; SRC/. copies a directory's contents. Every file is
 * streamed by core (1 MiB chunks), never held whole; large copies show a progress bar on a TTY.
 */
import { lstat, mkdir, readdir, stat } from "node:fs/promises";
import { basename, join, posix, relative, resolve, sep } from "node:path";
import { progress } from "@clack/prompts";
import type { FileEntry, Sandbox } from "@kiln/core";
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { kilnErrorCode, UsageError } from "../errors.ts";
import { examples } from "../help.ts";
import { formatBytes, note, printJson } from "../output.ts";

/** Copies at least this large get a progress bar (on a TTY). */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

export type Location = { sandbox: string; path: string } | { local: string };

interface Job {
  /** Directories to make first (destination paths), then files to copy. */
  dirs: string[];
  files: { from: string; to: string; size: number }[];
}

export function registerCp(program: Command): void {
  withCommonOptions(
    program
      .command("cp")
      .description("Copy files or directories between this machine and a sandbox (as docker cp)")
      .argument("<src>", "a local path or ID:/path")
      .argument("<dst>", "a local path or ID:/path")
      .option("-q, --quiet", "no progress bar")
      .addHelpText(
        "after",
        `${examples(
          "kiln cp ./data box:/workspace/         # the directory lands at /workspace/data",
          "kiln cp box:/workspace/out.csv .",
          "kiln cp ./src/. box:/workspace/app     # the contents of src into app",
        )}

Relative sandbox paths start at /workspace. A path with a colon in it on this machine: write it as ./a:b.`,
      ),
  ).action(async (src: string, dst: string, flags: CommonOptions & { quiet?: boolean }) => {
    const from = parseLocation(src);
    const to = parseLocation(dst);
    if ("sandbox" in from && "sandbox" in to)
      throw new UsageError("copy between two sandboxes is not supported: copy through this machine");
    if ("local" in from && "local" in to) throw new UsageError("one of SRC and DST must be a sandbox path (ID:/path)");
    await withKiln(flags, async (kiln) => {
      const id = "sandbox" in from ? from.sandbox : (to as { sandbox: string }).sandbox;
      const sandbox = await kiln.get(id);
      const result =
        "local" in from
          ? await upload(sandbox, from.local, (to as { path: string }).path, flags)
          : await download(sandbox, (from as { path: string }).path, (to as { local: string }).local, flags);
      if (flags.json) printJson(result);
    });
  });
}

/** ID:path is a sandbox path when ID has no slash and does not start with a dot (docker's rule). */
export function parseLocation(text: string): Location {
  const colon = text.indexOf(":");
  if (colon > 0) {
    const prefix = text.slice(0, colon);
    if (!prefix.includes("/") && !prefix.startsWith(".")) {
      const path = text.slice(colon + 1);
      return { sandbox: prefix, path: path === "" ? "." : path };
    }
  }
  if (text === "") throw new UsageError("an empty path");
  return { local: text };
}

interface CopyResult {
  source: string;
  destination: string;
  files: number;
  bytes: number;
}

async function upload(sandbox: Sandbox, src: string, dst: string, flags: { quiet?: boolean }): Promise<CopyResult> {
  const contents = /(^|\/)\.$/.test(src);
  const local = resolve(src);
  const info = await lstat(local).catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      `cannot read ${src}: ${error.code === "ENOENT" ? "no such file or directory" : (error.code ?? error.message)}`,
    );
  });
  const dest = await sandboxEntry(sandbox, dst);
  let target: string;
  if (dest?.type === "directory") target = contents ? dest.path : posix.join(dest.path, basename(local));
  else if (dest && info.isDirectory())
    throw new Error(`cannot copy a directory onto a file: ${sandbox.id.slice(0, 12)}:${dest.path}`);
  else if (!dest && dst.endsWith("/") && !info.isDirectory())
    throw new Error(`no such directory in the sandbox: ${dst}`);
  else target = dest?.path ?? dst;
  const job: Job = { dirs: [], files: [] };
  if (info.isDirectory()) {
    job.dirs.push(target);
    for (const entry of await readdir(local, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      const remote = posix.join(target, relative(local, path).split(sep).join("/"));
      if (entry.isDirectory()) job.dirs.push(remote);
      else if (entry.isFile()) job.files.push({ from: path, to: remote, size: (await stat(path)).size });
      else if (entry.isSymbolicLink())
        throw new Error(`${path} is a symlink, which cp refuses: copy its target instead`);
    }
  } else if (info.isFile()) job.files.push({ from: local, to: target, size: info.size });
  else throw new Error(`${src} is neither a file nor a directory`);
  await runJob(job, flags, `${src} -> ${sandbox.id.slice(0, 12)}:${target}`, {
    mkdir: (dir) => sandbox.files.mkdir(dir),
    copy: (file) => sandbox.files.upload(file.from, file.to),
  });
  return summary(local, `${sandbox.id}:${target}`, job);
}

async function download(sandbox: Sandbox, src: string, dst: string, flags: { quiet?: boolean }): Promise<CopyResult> {
  const contents = /(^|\/)\.$/.test(src);
  const source = await sandboxEntry(sandbox, src);
  if (!source) throw new Error(`no such file or directory in the sandbox: ${src}`);
  const local = resolve(dst);
  const dest = await stat(local).catch(() => undefined);
  let target: string;
  if (dest?.isDirectory()) target = contents ? local : join(local, posix.basename(source.path));
  else if (dest && source.type === "directory") throw new Error(`cannot copy a directory onto a file: ${dst}`);
  else if (!dest && dst.endsWith("/") && source.type !== "directory") throw new Error(`no such directory: ${dst}`);
  else target = local;
  const job: Job = { dirs: [], files: [] };
  if (source.type === "directory") {
    job.dirs.push(target);
    await walk(sandbox, source.path, target, job);
  } else if (source.type === "file") job.files.push({ from: source.path, to: target, size: source.size });
  else throw new Error(`${src} is a ${source.type}; cp takes files and directories`);
  await runJob(job, flags, `${sandbox.id.slice(0, 12)}:${source.path} -> ${dst}`, {
    mkdir: (dir) => mkdir(dir, { recursive: true }).then(() => {}),
    copy: (file) => sandbox.files.download(file.from, file.to),
  });
  return summary(`${sandbox.id}:${source.path}`, target, job);
}

/** The sandbox's directory tree, breadth first; links and special files are skipped (as core's download). */
async function walk(sandbox: Sandbox, remote: string, local: string, job: Job): Promise<void> {
  for (const entry of await sandbox.files.list(remote)) {
    if (entry.name === "" || entry.name === "." || entry.name === ".." || entry.name.includes("/")) continue;
    const target = join(local, entry.name);
    if (entry.type === "directory") {
      job.dirs.push(target);
      await walk(sandbox, posix.join(remote, entry.name), target, job);
    } else if (entry.type === "file")
      job.files.push({ from: posix.join(remote, entry.name), to: target, size: entry.size });
  }
}

async function sandboxEntry(sandbox: Sandbox, path: string): Promise<FileEntry | undefined> {
  return sandbox.files.stat(path.replace(/\/\.$/, "") || "/").catch((error) => {
    if (kilnErrorCode(error) === "FILE_NOT_FOUND") return undefined;
    throw error;
  });
}

async function runJob(
  job: Job,
  flags: { quiet?: boolean },
  title: string,
  ops: { mkdir(dir: string): Promise<void>; copy(file: Job["files"][number]): Promise<void> },
): Promise<void> {
  const total = job.files.reduce((sum, f) => sum + f.size, 0);
  const bar =
    process.stderr.isTTY && !flags.quiet && total >= PROGRESS_MIN_BYTES
      ? progress({ max: total, output: process.stderr, withGuide: false, indicator: "timer" })
      : undefined;
  bar?.start(`${title} (${formatBytes(total)})`);
  let done = 0;
  try {
    for (const dir of job.dirs) await ops.mkdir(dir);
    for (const file of job.files) {
      bar?.message(`${basename(file.to)} (${formatBytes(done)} of ${formatBytes(total)})`);
      await ops.copy(file);
      done += file.size;
      bar?.advance(file.size);
    }
  } catch (error) {
    bar?.error(`copy failed after ${formatBytes(done)}`);
    throw error;
  }
  bar?.stop(`copied ${job.files.length} file${job.files.length === 1 ? "" : "s"}, ${formatBytes(total)}`);
  if (!bar && process.stderr.isTTY && !flags.quiet && job.files.length > 1)
    note(`copied ${job.files.length} files, ${formatBytes(total)}`);
}

function summary(source: string, destination: string, job: Job): CopyResult {
  return { source, destination, files: job.files.length, bytes: job.files.reduce((sum, f) => sum + f.size, 0) };
}
