/**
 * Custom images (kiln.images.build/list/delete): a declarative ImageSpec, or a user's own
 * Dockerfile, built into an image Kiln can start sandboxes from. The tag is a hash of the spec
 * (and of the base image's id), so an unchanged spec is found in milliseconds; each spec entry
 * group is one Dockerfile step, so a changed spec rebuilds from the first changed step on (the
 * engine's layer cache keeps the steps before it).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { pack } from "tar-stream";
import type { Engine } from "../engine/engine.ts";
import { LABEL } from "../engine/labels.ts";
import { EngineError, ImageBuildError, InvalidArgumentError, NotFoundError, throwIfAborted } from "../errors.ts";
import type { ImageProgressEvent } from "../types.ts";
import { checkKnownKeys, describe, isRecord, requireName } from "../validate.ts";
import type { RuntimeImages } from "./runtime-image.ts";

const execFileAsync = promisify(execFile);

/** Label on custom images: the spec's name (LABEL.image is "custom"). */
export const CUSTOM_NAME_LABEL = "kiln.image-name";
export const CUSTOM_REPO_PREFIX = "kiln-image-";

/** A declarative image: Kiln's runtime image (or a Debian/Ubuntu image Kiln adds its agent to) plus your steps. */
export interface ImageSpec {
  name: string;
  /** Default: Kiln's runtime image. Else a Debian/Ubuntu-based image; Kiln adds its agent, kernels, Node and user to it. */
  from?: string;
  /** Debian packages (apt-get install). One step. */
  apt?: string[];
  /** pip install arguments (packages, local paths copied with `files`, flags such as --no-index). One step. */
  pip?: string[];
  /**
   * Global npm packages (npm install -g, from the registry the host's npm is configured with);
   * require() finds them (NODE_PATH). Kiln's runtime image has npm. One step.
   */
  npm?: string[];
  /** Shell commands, run as root after files, pip and npm. One step each. */
  run?: string[];
  /** Absolute path in the image -> content. One step (copied before pip, npm and run, so they can use them). */
  files?: Record<string, string | Uint8Array>;
  env?: Record<string, string>;
  workdir?: string;
}

/** A user's own Dockerfile; the image it builds must contain Kiln's agent (e.g. FROM a Kiln image). */
export interface DockerfileImageSpec {
  name: string;
  /** Path of the Dockerfile. */
  dockerfile: string;
  /** The build context directory. */
  context: string;
}

export interface ImageInfo {
  name: string;
  /** The engine tag, kiln-image-<name>:<hash>. */
  tag: string;
  createdAt: string;
  sizeBytes: number;
}

export interface BuildOptions {
  onProgress?: (event: ImageProgressEvent) => void;
  signal?: AbortSignal;
}

const SPEC_KEYS = ["name", "from", "apt", "pip", "npm", "run", "files", "env", "workdir"];
const DOCKERFILE_KEYS = ["name", "dockerfile", "context"];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function stringList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.length === 0 || v.includes("\n"))) {
    throw new InvalidArgumentError(field, `must be an array of non-empty one-line strings, got ${describe(value)}`);
  }
  return value as string[];
}

function absolutePath(field: string, value: unknown): string {
  if (typeof value !== "string" || !value.startsWith("/") || value.includes("\n") || value.includes("\0")) {
    throw new InvalidArgumentError(field, `must be an absolute path, got ${describe(value)}`);
  }
  const normal = posix.normalize(value);
  if (normal === "/") throw new InvalidArgumentError(field, "must name a file, not /");
  return normal;
}

/** Single-quotes a word for /bin/sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

interface ValidSpec {
  name: string;
  from?: string;
  apt: string[];
  pip: string[];
  npm: string[];
  run: string[];
  files: [string, Uint8Array][];
  env: [string, string][];
  workdir?: string;
}

export function validateImageSpec(spec: unknown): ValidSpec | (DockerfileImageSpec & { kind: "dockerfile" }) {
  if (!isRecord(spec)) throw new InvalidArgumentError("spec", `must be an object, got ${describe(spec)}`);
  const name = requireName("spec.name", spec.name);
  if (name !== name.toLowerCase()) {
    throw new InvalidArgumentError("spec.name", `must be lower case (it names an engine image), got ${describe(name)}`);
  }
  if (spec.dockerfile !== undefined) {
    checkKnownKeys("spec", spec, DOCKERFILE_KEYS);
    if (typeof spec.dockerfile !== "string" || typeof spec.context !== "string") {
      throw new InvalidArgumentError(
        "spec",
        "a Dockerfile build needs `dockerfile` (a path) and `context` (a directory)",
      );
    }
    return { kind: "dockerfile", name, dockerfile: spec.dockerfile, context: spec.context };
  }
  checkKnownKeys("spec", spec, SPEC_KEYS);
  if (spec.from !== undefined && (typeof spec.from !== "string" || !/^[A-Za-z0-9][\w.\-/:@]*$/.test(spec.from))) {
    throw new InvalidArgumentError("spec.from", `must be an image reference, got ${describe(spec.from)}`);
  }
  const files: [string, Uint8Array][] = [];
  if (spec.files !== undefined) {
    if (!isRecord(spec.files))
      throw new InvalidArgumentError("spec.files", `must be an object, got ${describe(spec.files)}`);
    for (const [path, content] of Object.entries(spec.files)) {
      const at = absolutePath(`spec.files[${JSON.stringify(path)}]`, path);
      if (typeof content === "string") files.push([at, Buffer.from(content)]);
      else if (content instanceof Uint8Array) files.push([at, content]);
      else throw new InvalidArgumentError(`spec.files[${JSON.stringify(path)}]`, "must be a string or a Uint8Array");
    }
    files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  const env: [string, string][] = [];
  if (spec.env !== undefined) {
    if (!isRecord(spec.env)) throw new InvalidArgumentError("spec.env", `must be an object, got ${describe(spec.env)}`);
    for (const [key, value] of Object.entries(spec.env)) {
      if (!ENV_NAME.test(key) || typeof value !== "string") {
        throw new InvalidArgumentError(`spec.env.${key}`, "must be NAME: string (NAME of letters, digits, _)");
      }
      env.push([key, value]);
    }
  }
  return {
    name,
    ...(spec.from === undefined ? {} : { from: spec.from as string }),
    apt: stringList("spec.apt", spec.apt),
    pip: stringList("spec.pip", spec.pip),
    npm: stringList("spec.npm", spec.npm),
    run: stringList("spec.run", spec.run),
    files,
    env,
    ...(spec.workdir === undefined ? {} : { workdir: absolutePath("spec.workdir", spec.workdir) }),
  };
}

export interface SpecBuildSettings {
  /** The registry the npm step installs from (the host's `npm config get registry`); npm's default when unset. */
  npmRegistry?: string;
  /**
   * CA certificates the npm step trusts, as the host's npm does: its `cafile` (replacing the
   * default set) and NODE_EXTRA_CA_CERTS (added to it), e.g. for a TLS-intercepting proxy.
   */
  npmCafile?: Uint8Array;
  npmExtraCa?: Uint8Array;
}

/** Where the npm step's CA files sit during the build (under /tmp: a sandbox's tmpfs hides them). */
const NPM_TLS_DIR = "/tmp/kiln-npm-tls";

/**
 * How the host's npm reaches its registry, read when a spec needs npm: the registry, and the CA
 * files it trusts. Empty without npm on the host.
 */
export async function hostNpmSettings(env: NodeJS.ProcessEnv = process.env): Promise<SpecBuildSettings> {
  const settings: SpecBuildSettings = {};
  try {
    const { stdout } = await execFileAsync("npm", ["config", "get", "registry", "cafile"], { timeout: 10_000 });
    const values = new Map(
      stdout
        .split("\n")
        .map((line) => line.trim().split(/=(.*)/s) as [string, string | undefined])
        .filter(([, value]) => value !== undefined && value !== "" && value !== "null"),
    );
    const registry = values.get("registry");
    if (registry && /^https?:\/\/\S+$/.test(registry)) settings.npmRegistry = registry;
    const cafile = values.get("cafile");
    if (cafile) settings.npmCafile = await readFile(cafile);
  } catch {
    // No npm on the host, or an unreadable cafile: npm's own defaults in the build.
  }
  if (env.NODE_EXTRA_CA_CERTS) {
    settings.npmExtraCa = await readFile(env.NODE_EXTRA_CA_CERTS).catch(() => undefined);
    if (settings.npmExtraCa === undefined) delete settings.npmExtraCa;
  }
  return settings;
}

/** The build-context files the npm step needs (its CA files), relative to the context. */
function npmContextFiles(settings: SpecBuildSettings): [string, Uint8Array][] {
  const files: [string, Uint8Array][] = [];
  if (settings.npmCafile) files.push(["npm-tls/cafile.pem", settings.npmCafile]);
  if (settings.npmExtraCa) files.push(["npm-tls/extra.pem", settings.npmExtraCa]);
  return files;
}

/** The Dockerfile of a spec on `base` (an image that already has Kiln's runtime layer). One step per entry group. */
export function specDockerfile(spec: ValidSpec, base: string, settings: SpecBuildSettings = {}): string {
  const lines = [`FROM ${base}`, "USER root", "ARG DEBIAN_FRONTEND=noninteractive"];
  if (spec.apt.length > 0) {
    lines.push(
      `RUN apt-get update && apt-get install -y --no-install-recommends ${spec.apt.map(shellQuote).join(" ")} && rm -rf /var/lib/apt/lists/*`,
    );
  }
  if (spec.files.length > 0) lines.push("COPY files/ /");
  if (spec.pip.length > 0) {
    // The runtime image has Python but not pip: Debian's python3-pip, installed on first use.
    lines.push(
      "RUN (python3 -m pip --version >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*)) " +
        `&& python3 -m pip install --no-cache-dir --break-system-packages --root-user-action=ignore ${spec.pip.map(shellQuote).join(" ")}`,
    );
  }
  if (spec.npm.length > 0) {
    const registry = settings.npmRegistry === undefined ? "" : ` --registry=${shellQuote(settings.npmRegistry)}`;
    const cafile = settings.npmCafile ? ` --cafile=${NPM_TLS_DIR}/cafile.pem` : "";
    const extraCa = settings.npmExtraCa ? `NODE_EXTRA_CA_CERTS=${NPM_TLS_DIR}/extra.pem ` : "";
    if (cafile || extraCa) lines.push(`COPY npm-tls/ ${NPM_TLS_DIR}/`);
    // The cache goes with the step, so the layer holds only the packages.
    lines.push(
      `RUN command -v npm >/dev/null || { echo "spec.npm needs npm in the image, and this one has none (an image built on an older Kiln runtime image): build on the current runtime image, or add npm with spec.run" >&2; exit 1; }; ` +
        `${extraCa}npm install -g --no-fund --no-audit --no-update-notifier --cache /tmp/kiln-npm-cache${registry}${cafile} ${spec.npm.map(shellQuote).join(" ")} && rm -rf /tmp/kiln-npm-cache`,
    );
  }
  for (const command of spec.run) lines.push(`RUN ${command}`);
  if (spec.env.length > 0) lines.push(`ENV ${spec.env.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`);
  if (spec.workdir !== undefined)
    lines.push(
      `RUN mkdir -p ${shellQuote(spec.workdir)} && chown kiln:kiln ${shellQuote(spec.workdir)}`,
      `WORKDIR ${spec.workdir}`,
    );
  lines.push(`LABEL ${LABEL.image}=custom ${CUSTOM_NAME_LABEL}=${spec.name}`, "USER kiln");
  return `${lines.join("\n")}\n`;
}

function specContext(dockerfile: string, files: [string, Uint8Array][], extra: [string, Uint8Array][] = []): Readable {
  const archive = pack();
  const mtime = new Date(0);
  archive.entry({ name: "Dockerfile", mtime }, dockerfile);
  for (const [path, content] of files)
    archive.entry({ name: `files${path}`, mtime, mode: 0o644 }, Buffer.from(content));
  for (const [path, content] of extra) archive.entry({ name: path, mtime, mode: 0o644 }, Buffer.from(content));
  archive.finalize();
  return Readable.from(archive);
}

/** Every regular file under `dir` (relative paths, sorted). */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await walk(dir, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

export class CustomImages {
  readonly #engine: Engine;
  readonly #runtime: RuntimeImages;
  /** Image references already checked to carry Kiln's agent. */
  readonly #verified = new Set<string>();

  constructor(engine: Engine, runtime: RuntimeImages) {
    this.#engine = engine;
    this.#runtime = runtime;
  }

  async build(
    spec: ImageSpec | DockerfileImageSpec,
    options: BuildOptions = {},
  ): Promise<{ name: string; tag: string }> {
    const valid = validateImageSpec(spec);
    const progress = (phase: ImageProgressEvent["phase"], message: string) => options.onProgress?.({ phase, message });
    const hash = createHash("sha256");
    let context: Readable;
    let tag: string;
    if ("kind" in valid) {
      const dockerfile = await readFile(valid.dockerfile).catch((err: Error) => {
        throw new InvalidArgumentError("spec.dockerfile", `cannot read ${valid.dockerfile}: ${err.message}`);
      });
      const files = await walk(valid.context).catch((err: Error) => {
        throw new InvalidArgumentError("spec.context", `cannot read ${valid.context}: ${err.message}`);
      });
      hash.update(dockerfile);
      const archive = pack();
      const contents: [string, Buffer, number][] = [];
      for (const file of files) {
        const path = join(valid.context, file);
        const [content, info] = await Promise.all([readFile(path), stat(path)]);
        hash.update(`\0${file}\0${info.mode & 0o777}\0`).update(content);
        contents.push([file, content, info.mode & 0o777]);
      }
      tag = `${CUSTOM_REPO_PREFIX}${valid.name}:${hash.digest("hex").slice(0, 16)}`;
      if (await this.#engine.imageExists(tag)) return this.#found(valid.name, tag, progress);
      const mtime = new Date(0);
      for (const [file, content, mode] of contents) {
        if (file !== "Dockerfile") archive.entry({ name: file, mtime, mode }, content);
      }
      // The label is appended so list() and delete() find the image; the agent check comes after the build.
      archive.entry(
        { name: "Dockerfile", mtime },
        `${dockerfile.toString()}\nLABEL ${LABEL.image}=custom ${CUSTOM_NAME_LABEL}=${valid.name}\n`,
      );
      archive.finalize();
      context = Readable.from(archive);
    } else {
      const { base, identity } = await this.#baseFor(valid.from, options);
      const npm = valid.npm.length > 0 ? await hostNpmSettings() : {};
      const dockerfile = specDockerfile(valid, base, npm);
      hash.update(dockerfile);
      // What the base is: a new runtime (a new content-hash tag) or a re-pulled `from` (a new id) rebuilds this image.
      hash.update(identity);
      for (const [path, content] of [...valid.files, ...npmContextFiles(npm)])
        hash.update(`\0${path}\0`).update(content);
      tag = `${CUSTOM_REPO_PREFIX}${valid.name}:${hash.digest("hex").slice(0, 16)}`;
      if (await this.#engine.imageExists(tag)) return this.#found(valid.name, tag, progress);
      context = specContext(dockerfile, valid.files, npmContextFiles(npm));
    }
    throwIfAborted(options.signal, "images.build");
    progress("build", `building ${tag}`);
    const output: string[] = [];
    try {
      await this.#engine.buildImage(context, tag, (line) => {
        output.push(line);
        if (output.length > 200) output.shift();
        progress("build", line);
      });
    } catch (err) {
      if (!(err instanceof EngineError)) throw err;
      // The failing step's output: the lines since the last "Step N/M" header.
      const start = output.findLastIndex((l) => /^Step \d+\/\d+ :/.test(l));
      const step = (start >= 0 ? output.slice(start) : output).join("\n").trim();
      throw new ImageBuildError(`images.build(${JSON.stringify(valid.name)}) failed: ${err.message}\n${step}`, {
        cause: err,
      });
    }
    if ("kind" in valid && !(await this.#hasAgent(tag))) {
      await this.#engine.removeImage(tag).catch(() => {});
      throw new ImageBuildError(
        `images.build(${JSON.stringify(valid.name)}): the Dockerfile's image has no Kiln agent. Start it FROM a Kiln image (one built by images.build, or the runtime image), or use a declarative spec with { from: "<your base>" }`,
      );
    }
    await this.#removeOlder(valid.name, tag);
    progress("done", tag);
    return { name: valid.name, tag };
  }

  #found(name: string, tag: string, progress: (phase: "done", message: string) => void) {
    progress("done", `${tag} (unchanged)`);
    return { name, tag };
  }

  async list(): Promise<ImageInfo[]> {
    const images = await this.#engine.listImages({ [LABEL.image]: "custom" });
    const byName = new Map<string, ImageInfo>();
    for (const image of images) {
      const name = image.labels[CUSTOM_NAME_LABEL];
      const tag = image.tags.find((t) => t.startsWith(`${CUSTOM_REPO_PREFIX}${name}:`));
      if (!name || !tag) continue;
      const info = { name, tag, createdAt: image.createdAt, sizeBytes: image.sizeBytes };
      const seen = byName.get(name);
      if (!seen || seen.createdAt < info.createdAt) byName.set(name, info);
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Removes every tag of the named image; ConflictError while a sandbox uses it. */
  async delete(name: string): Promise<void> {
    const valid = requireName("name", name);
    const tags = await this.#tags(valid);
    if (tags.length === 0) throw new NotFoundError(`image ${JSON.stringify(valid)} not found`);
    for (const tag of tags) await this.#engine.removeImage(tag);
  }

  /**
   * The engine image for create({ image }): a built image's name resolves to its newest tag; any
   * other reference must carry Kiln's agent (a Kiln-built or snapshot image).
   */
  async resolve(ref: string): Promise<string> {
    if (this.#verified.has(ref)) return ref;
    if (!ref.includes(":") && !ref.includes("@") && !ref.includes("/")) {
      const tags = await this.#tags(ref);
      if (tags.length > 0) return tags[0] as string;
    }
    if (!(await this.#engine.imageExists(ref))) {
      throw new NotFoundError(
        `image ${JSON.stringify(ref)} not found: build it with kiln.images.build({ name, ... }) (kiln.images.list() shows the built ones)`,
      );
    }
    if (!(await this.#hasAgent(ref))) {
      throw new InvalidArgumentError(
        "options.image",
        `${ref} has no Kiln agent, so no sandbox can start from it: build an image from it with kiln.images.build({ name: "my-image", from: ${JSON.stringify(ref)} }) and create({ image: "my-image" })`,
      );
    }
    this.#verified.add(ref);
    return ref;
  }

  /**
   * Older tags of built images (left behind by a rebuild while a sandbox used them) that nothing
   * uses now: the engine refuses to remove one a sandbox, a stopped sandbox, a pool member or a
   * snapshot (a child image) still holds. The newest tag of each name always stays. Returns the tags removed.
   */
  async pruneStale(): Promise<string[]> {
    const images = await this.#engine.listImages({ [LABEL.image]: "custom" });
    const newest = new Map<string, string>();
    for (const image of [...images].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))) {
      const name = image.labels[CUSTOM_NAME_LABEL];
      const tag = image.tags.find((t) => t.startsWith(`${CUSTOM_REPO_PREFIX}${name}:`));
      if (name && tag && !newest.has(name)) newest.set(name, tag);
    }
    const removed: string[] = [];
    for (const image of images) {
      const name = image.labels[CUSTOM_NAME_LABEL];
      for (const tag of image.tags) {
        if (!name || !tag.startsWith(`${CUSTOM_REPO_PREFIX}${name}:`) || newest.get(name) === tag) continue;
        const gone = await this.#engine.removeImage(tag).then(
          () => true,
          () => false,
        );
        if (gone) removed.push(tag);
      }
    }
    return removed;
  }

  /** Tags of a built image by name, newest first. */
  async #tags(name: string): Promise<string[]> {
    const images = await this.#engine.listImages({ [LABEL.image]: "custom", [CUSTOM_NAME_LABEL]: name });
    return images
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))
      .flatMap((i) => i.tags.filter((t) => t.startsWith(`${CUSTOM_REPO_PREFIX}${name}:`)));
  }

  /** Older tags of the same name; one a sandbox still uses stays (the engine refuses). */
  async #removeOlder(name: string, keep: string): Promise<void> {
    for (const tag of await this.#tags(name)) {
      if (tag !== keep) await this.#engine.removeImage(tag).catch(() => {});
    }
  }

  async #hasAgent(ref: string): Promise<boolean> {
    const all = await this.#engine.listImages({});
    const image = all.find((i) => i.id === ref || i.tags.includes(ref) || i.tags.includes(`${ref}:latest`));
    const kind = image?.labels[LABEL.image];
    return kind === "runtime" || kind === "snapshot" || kind === "custom";
  }

  async #imageId(ref: string): Promise<string> {
    const all = await this.#engine.listImages({});
    return all.find((i) => i.id === ref || i.tags.includes(ref) || i.tags.includes(`${ref}:latest`))?.id ?? ref;
  }

  /** The image the spec's steps build on: the runtime image, `from` if it has the agent, else `from` plus Kiln's layer. */
  async #baseFor(from: string | undefined, options: BuildOptions): Promise<{ base: string; identity: string }> {
    if (from === undefined) {
      // The runtime tag is already a hash of its content (an identical rebuild keeps it).
      const runtime = await this.#runtime.ensure(options);
      return { base: runtime, identity: runtime };
    }
    if (!(await this.#engine.imageExists(from))) {
      options.onProgress?.({ phase: "base", message: `pulling ${from}` });
      if (!(await this.#engine.pullImage(from))) {
        throw new ImageBuildError(`spec.from: image ${from} is neither on the engine nor pullable`);
      }
    }
    const id = await this.#imageId(from);
    if (await this.#hasAgent(from)) return { base: from, identity: id };
    options.onProgress?.({ phase: "base", message: `adding Kiln's agent, kernels and user to ${from}` });
    const base = await this.#runtime.ensureOn(from, options, id).catch((err: unknown) => {
      if (err instanceof EngineError) {
        throw new ImageBuildError(
          `adding Kiln's runtime layer to ${from} failed (it must be Debian/Ubuntu-based with apt): ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    });
    return { base, identity: base };
  }
}
