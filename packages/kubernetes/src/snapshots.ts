/**
 * Engine-neutral snapshots: what a sandbox became, in a form any engine can start again.
 *
 * A snapshot is a manifest (format, base image, the paths it holds, what the Python state held)
 * plus one gzipped tar of the sandbox user's writable trees (/workspace and the home directory,
 * where pip --user, caches and Kiln's saved interpreter state live). It is taken and restored
 * only through the public Sandbox API (exec, files, runCode), so a snapshot taken on Docker
 * restores on Kubernetes and the other way round; it lives in a pluggable SnapshotStore
 * (DirectorySnapshotStore by default: one directory per snapshot).
 *
 * What it does not hold: changes outside those trees (system packages: a Pod runs as the
 * sandbox user and cannot make them anyway), running processes, and interpreter state beyond
 * the default Python context's variables (as core's snapshots: modules by name, values by dill;
 * what cannot be pickled is listed as failed).
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CreateSandboxOptions, Kiln, Sandbox } from "@kiln/core";
import { ConflictError, InvalidArgumentError, SnapshotNotFoundError } from "@kiln/core";

export const SNAPSHOT_FORMAT = "kiln-snapshot/v1";
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** The trees a snapshot holds, relative to /. */
export const SNAPSHOT_PATHS = ["workspace", "home/kiln"];
const ARCHIVE = "/tmp/.kiln-snapshot.tgz";
const STATE = "/home/kiln/.kiln/neutral-state/default.pkl";

export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  name: string;
  createdAt: string;
  /** The image the sandbox ran (a tag the restoring engine must be able to run). */
  baseImage: string;
  /** Paths (relative to /) the archive holds. */
  paths: string[];
  /** The default Python context's state: names restored as modules or values, and what failed. */
  python?: { saved: string[]; failed: { name: string; reason: string }[] };
  sizeBytes: number;
  sourceSandboxId?: string;
}

export interface SnapshotStore {
  put(manifest: SnapshotManifest, archive: Buffer): Promise<void>;
  get(name: string): Promise<{ manifest: SnapshotManifest; archive: Buffer } | undefined>;
  list(): Promise<SnapshotManifest[]>;
  delete(name: string): Promise<void>;
}

/** A directory per snapshot: `<root>/<name>/manifest.json` and `<root>/<name>/files.tgz`. */
export class DirectorySnapshotStore implements SnapshotStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async put(manifest: SnapshotManifest, archive: Buffer): Promise<void> {
    const dir = join(this.root, checkName(manifest.name));
    try {
      await mkdir(dir, { recursive: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") {
        throw new ConflictError(`A snapshot named "${manifest.name}" already exists in ${this.root}`);
      }
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      await mkdir(this.root, { recursive: true });
      return this.put(manifest, archive);
    }
    await writeFile(join(dir, "files.tgz"), archive);
    // The manifest last: a snapshot without one is incomplete and not listed.
    await writeFile(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  }

  async get(name: string): Promise<{ manifest: SnapshotManifest; archive: Buffer } | undefined> {
    const dir = join(this.root, checkName(name));
    try {
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as SnapshotManifest;
      return { manifest, archive: await readFile(join(dir, "files.tgz")) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async list(): Promise<SnapshotManifest[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: SnapshotManifest[] = [];
    for (const name of names.sort()) {
      try {
        out.push(JSON.parse(await readFile(join(this.root, name, "manifest.json"), "utf8")) as SnapshotManifest);
      } catch {
        // incomplete or foreign: not a snapshot
      }
    }
    return out;
  }

  async delete(name: string): Promise<void> {
    const dir = join(this.root, checkName(name));
    if (!(await this.get(name))) throw new SnapshotNotFoundError(name);
    await rm(dir, { recursive: true, force: true });
  }
}

function checkName(name: string): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidArgumentError("name", "snapshot names are 1-63 letters, digits, '.', '_', '-'");
  }
  return name;
}

/** Saves the default context's variables as core's kernel does (modules by name, values with dill). */
const SAVE_STATE = `
def __kiln_save(path):
    import os, pickle, types, dill
    imports, values, failed = {}, {}, []
    for name, value in list(globals().items()):
        if name.startswith("_") or name in ("In", "Out", "exit", "quit", "get_ipython", "display"):
            continue
        if isinstance(value, types.ModuleType):
            imports[name] = value.__name__
            continue
        try:
            dill.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            values[name] = value
        except Exception as exc:
            failed.append({"name": name, "reason": f"{type(exc).__name__}: {exc}"})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"imports": imports, "values": list(values), "failed": failed}, f)
        dill.dump(values, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {"saved": sorted(imports) + sorted(values), "failed": failed}
__kiln_saved = __kiln_save(${JSON.stringify(STATE)})
del __kiln_save
import json as __kiln_json
print(__kiln_json.dumps(__kiln_saved))
del __kiln_saved, __kiln_json
`;

const LOAD_STATE = `
def __kiln_load(path):
    import importlib, pickle, dill
    with open(path, "rb") as f:
        state = pickle.load(f)
        for name, module in state["imports"].items():
            globals()[name] = importlib.import_module(module)
        globals().update(dill.load(f))
__kiln_load(${JSON.stringify(STATE)})
del __kiln_load
`;

/**
 * Takes an engine-neutral snapshot of `sandbox` (on any engine) into `store`. The sandbox keeps
 * running; its default Python context's variables are saved first (when it has any).
 */
export async function takeSnapshot(sandbox: Sandbox, store: SnapshotStore, name: string): Promise<SnapshotManifest> {
  checkName(name);
  if (await store.get(name)) throw new ConflictError(`A snapshot named "${name}" already exists`);
  const info = await sandbox.info();
  let python: SnapshotManifest["python"];
  const saved = await sandbox.runCode(SAVE_STATE, { language: "python" });
  if (saved.status === "ok") {
    const line = saved.stdout.trim().split("\n").pop() ?? "{}";
    python = JSON.parse(line) as SnapshotManifest["python"];
  }
  const packed = await sandbox.exec(["tar", "-czf", ARCHIVE, "-C", "/", ...SNAPSHOT_PATHS]);
  if (packed.exitCode !== 0) throw new Error(`snapshot ${name}: tar exited ${packed.exitCode}: ${packed.stderr}`);
  const archive = Buffer.from(await sandbox.files.read(ARCHIVE));
  await sandbox.exec(["rm", "-f", ARCHIVE, STATE]);
  const manifest: SnapshotManifest = {
    format: SNAPSHOT_FORMAT,
    name,
    createdAt: new Date().toISOString(),
    baseImage: info.image,
    paths: SNAPSHOT_PATHS,
    ...(python ? { python } : {}),
    sizeBytes: archive.length,
    sourceSandboxId: sandbox.id,
  };
  await store.put(manifest, archive);
  return manifest;
}

/**
 * Starts a new sandbox from a snapshot on `kiln` (any engine): its base image, then its files,
 * then its Python variables in the default context. `options` are create()'s (image excepted).
 */
export async function restoreSnapshot(
  kiln: Kiln,
  store: SnapshotStore,
  name: string,
  options: Omit<CreateSandboxOptions, "image" | "snapshot"> = {},
): Promise<Sandbox> {
  const found = await store.get(checkName(name));
  if (!found) throw new SnapshotNotFoundError(name);
  const { manifest, archive } = found;
  if (manifest.format !== SNAPSHOT_FORMAT) {
    throw new InvalidArgumentError("snapshot", `${name} is in format ${manifest.format}, not ${SNAPSHOT_FORMAT}`);
  }
  const sandbox = await kiln.create({ ...options, image: manifest.baseImage });
  try {
    await sandbox.files.write(ARCHIVE, archive);
    const unpacked = await sandbox.exec(["sh", "-c", `tar -xzf ${ARCHIVE} -C / && rm -f ${ARCHIVE}`]);
    if (unpacked.exitCode !== 0)
      throw new Error(`restore ${name}: tar exited ${unpacked.exitCode}: ${unpacked.stderr}`);
    if (manifest.python) {
      const loaded = await sandbox.runCode(LOAD_STATE, { language: "python" });
      if (loaded.status !== "ok")
        throw new Error(
          `restore ${name}: Python state: ${loaded.error ? `${loaded.error.name}: ${loaded.error.value}` : loaded.stderr}`,
        );
      await sandbox.exec(["rm", "-f", STATE]);
    }
    return sandbox;
  } catch (err) {
    await sandbox.delete().catch(() => {});
    throw err;
  }
}
