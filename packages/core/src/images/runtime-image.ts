/**
 * The default runtime image: Debian bookworm with Python 3 (numpy, pandas, matplotlib, dill),
 * Node 24 with npm 11, git, curl, bash, the unprivileged user `kiln` owning /workspace, and the agent.
 * Its tag is a hash of everything that goes into it, so any change rebuilds it and an
 * unchanged one is found in milliseconds.
 */
import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { pack } from "tar-stream";
import type { Engine } from "../engine/engine.ts";
import { LABEL } from "../engine/labels.ts";
import { ImageBuildError, throwIfAborted } from "../errors.ts";
import type { ImageProgressEvent } from "../types.ts";
import { bootstrapDebianBase } from "./debian-base.ts";
import {
  packageFiles,
  SANDBOX_NODE_MAJOR,
  SANDBOX_NPM_MAJOR,
  sandboxNodeBinary,
  sandboxNpmTarball,
} from "./node-binary.ts";

export const RUNTIME_REPO = "kiln-runtime";
/** Our registry-free base, made by debootstrap when no Debian image can be found or pulled. */
export const BOOTSTRAPPED_BASE = "kiln-base:bookworm";
const UPSTREAM_BASE = "debian:bookworm-slim";

/** The agent's modules (runtime/kiln_agent/), copied into /opt/kiln/kiln_agent/. */
const AGENT_MODULES = [
  "__init__.py",
  "__main__.py",
  "agent.py",
  "commands.py",
  "config.py",
  "connection.py",
  "contexts.py",
  "files.py",
  "kernels.py",
  "limits.py",
  "loop.py",
  "main.py",
  "pipes.py",
  "port_forward.py",
  "privileges.py",
  "processes.py",
  "pty.py",
  "request.py",
  "run_code.py",
  "state.py",
  "streams.py",
  "util.py",
  "validate.py",
];
/** Files from runtime/ copied into /opt/kiln (paths relative to runtime/ and to /opt/kiln). */
const RUNTIME_FILES = ["kernel_python.py", "kernel_js.mjs", ...AGENT_MODULES.map((m) => `kiln_agent/${m}`)];

const RUNTIME_DIR = fileURLToPath(new URL("../../runtime/", import.meta.url));

/** Label on runtime images: the @kiln/core version that built them, so prune() touches only its own. */
export const CORE_VERSION_LABEL = "kiln.core-version";

/** This package's version (package.json sits two folders up from src/images/ and dist/images/ alike). */
export const CORE_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const PACKAGES = [
  "python3",
  "python3-numpy",
  "python3-pandas",
  "python3-matplotlib",
  "python3-dill",
  "python-is-python3",
  "git",
  "curl",
  "ca-certificates",
  "bash",
  "coreutils",
  "procps",
  "socat",
  "tini",
  "fonts-dejavu-core",
  // For the one-shot helper that installs an egress sandbox's packet filter (never run by the sandbox).
  "iptables",
];

function dockerfile(base: string): string {
  return `FROM ${base}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ${PACKAGES.join(" ")} \\
 && rm -rf /var/lib/apt/lists/* \\
 && useradd --uid 1000 --user-group --create-home --home-dir /home/kiln --shell /bin/bash kiln \\
 && mkdir -p /workspace /etc/kiln /opt/kiln /run/kiln \\
 && chown kiln:kiln /workspace \\
 && chmod 0700 /run/kiln \\
 && chmod 0755 /etc/kiln
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY kernel_python.py kernel_js.mjs /opt/kiln/
COPY kiln_agent /opt/kiln/kiln_agent
RUN python3 -m compileall -q /opt/kiln \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
# NODE_PATH: packages installed globally (images.build's npm step) load with require() in code and cells.
ENV HOME=/home/kiln LANG=C.UTF-8 MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1 NODE_PATH=/usr/local/lib/node_modules
LABEL ${LABEL.image}=runtime ${CORE_VERSION_LABEL}=${CORE_VERSION} ${LABEL.agentStdio}=1
USER kiln
WORKDIR /workspace
ENTRYPOINT ["/usr/bin/tini", "--"]
# Imported rather than run as a script, so it loads from the precompiled .pyc (about 3.5 MB less per sandbox).
# stdio=True: the host that creates the sandbox talks to the agent over the attached stdin/stdout.
# -S: the agent uses the standard library only; skipping site (dist-packages, .pth files) shortens every start.
CMD ["python3", "-I", "-S", "-c", "import sys; sys.path.insert(0, '/opt/kiln'); from kiln_agent.main import main; main(stdio=True)"]
`;
}

export interface PruneOptions {
  /** Tags never removed, besides the current runtime image (a Kiln's pinned `image`). @default [] */
  keep?: string[];
}

export interface EnsureOptions {
  onProgress?: (event: ImageProgressEvent) => void;
  signal?: AbortSignal;
}

export class RuntimeImages {
  readonly #engine: Engine;
  #ready?: string;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  /** Builds the runtime image if missing and returns its tag. Concurrent calls share one build. */
  async ensure(options: EnsureOptions = {}): Promise<string> {
    if (this.#ready && (await this.#engine.imageExists(this.#ready))) return this.#ready;
    const progress = (phase: ImageProgressEvent["phase"], message: string) => options.onProgress?.({ phase, message });
    const base = await this.#base(progress, options.signal);
    const tag = await this.ensureOn(base, options);
    this.#ready = tag;
    return tag;
  }

  /**
   * Adds Kiln's runtime layer (agent, kernels, Node, the `kiln` user, the runtime packages) to
   * any Debian/Ubuntu-based `base` image, with the same recipe as the default runtime image, and
   * returns the tag (kiln-runtime:<hash of recipe and base name>, and of `baseId` when given, so a
   * re-pulled base gets a new layer). Found in milliseconds once built.
   */
  async ensureOn(base: string, options: EnsureOptions = {}, baseId?: string): Promise<string> {
    const progress = (phase: ImageProgressEvent["phase"], message: string) => options.onProgress?.({ phase, message });
    let tag = await runtimeTag(base);
    if (baseId !== undefined) {
      tag = `${RUNTIME_REPO}:${createHash("sha256").update(`${tag} ${baseId}`).digest("hex").slice(0, 16)}`;
    }
    if (await this.#engine.imageExists(tag)) return tag;
    throwIfAborted(options.signal, "images.ensure");
    const { arch } = await this.#engine.info();
    const node = await sandboxNodeBinary(arch, (line) => progress("build", line));
    const npm = await sandboxNpmTarball((line) => progress("build", line));
    progress("build", `building ${tag} from ${base}`);
    await this.#engine.buildImage(await buildContext(base, node, npm), tag, (line) => progress("build", line));
    progress("done", tag);
    return tag;
  }

  /**
   * Removes runtime images this @kiln/core version built earlier (e.g. while its runtime files
   * changed) that nothing uses: never the current one, never one in `keep`, never one another
   * core version built (another app on the same engine may rely on it), and never one a sandbox,
   * a stopped sandbox or a snapshot still uses (the engine refuses those). Returns the tags removed.
   */
  async prune(options: PruneOptions = {}): Promise<string[]> {
    const keep = new Set(options.keep ?? []);
    if (this.#ready) keep.add(this.#ready);
    // The current tag on either base, without building anything.
    for (const base of [BOOTSTRAPPED_BASE, UPSTREAM_BASE]) keep.add(await runtimeTag(base));
    const removed: string[] = [];
    const images = await this.#engine.listImages({ [LABEL.image]: "runtime", [CORE_VERSION_LABEL]: CORE_VERSION });
    for (const image of images) {
      for (const tag of image.tags) {
        if (keep.has(tag) || !tag.startsWith(`${RUNTIME_REPO}:`)) continue;
        const gone = await this.#engine.removeImage(tag).then(
          () => true,
          () => false, // in use by a container or a snapshot: it stays
        );
        if (gone) removed.push(tag);
      }
    }
    return removed;
  }

  /** A Debian bookworm base: ours, else a local or pullable debian image, else debootstrap one. */
  async #base(progress: (phase: "base", message: string) => void, signal?: AbortSignal): Promise<string> {
    if (await this.#engine.imageExists(BOOTSTRAPPED_BASE)) return BOOTSTRAPPED_BASE;
    if (await this.#engine.imageExists(UPSTREAM_BASE)) return UPSTREAM_BASE;
    throwIfAborted(signal, "images.ensure");
    progress("base", `pulling ${UPSTREAM_BASE}`);
    if (await this.#engine.pullImage(UPSTREAM_BASE)) return UPSTREAM_BASE;
    progress("base", `no registry: bootstrapping Debian ${BOOTSTRAPPED_BASE} with debootstrap (about a minute)`);
    await bootstrapDebianBase(this.#engine, BOOTSTRAPPED_BASE, (line) => progress("base", line));
    return BOOTSTRAPPED_BASE;
  }
}

/** kiln-runtime:<hash of the Dockerfile, the runtime files and the Node major>. */
export async function runtimeTag(base: string): Promise<string> {
  const hash = createHash("sha256");
  hash.update(dockerfile(base));
  hash.update(`node ${SANDBOX_NODE_MAJOR}`);
  hash.update(`npm ${SANDBOX_NPM_MAJOR}`);
  for (const file of RUNTIME_FILES) {
    hash.update(file);
    hash.update(
      await readFile(`${RUNTIME_DIR}${file}`).catch(() => {
        throw new ImageBuildError(`runtime file missing from the package: ${RUNTIME_DIR}${file}`);
      }),
    );
  }
  return `${RUNTIME_REPO}:${hash.digest("hex").slice(0, 16)}`;
}

/** npm's manual pages and HTML docs: about a third of its package, never read in a sandbox. */
const NPM_SKIP = /^(docs|man)\//;

/** The build context as a tar stream: Dockerfile, the Node binary, npm, the runtime files. */
async function buildContext(base: string, nodeBinary: string, npmTarball: string) {
  const archive = pack();
  const mtime = new Date(0);
  archive.entry({ name: "Dockerfile", mtime }, dockerfile(base));
  const add = async (name: string, path: string, mode: number) => {
    const { size } = await stat(path);
    await new Promise<void>((resolve, reject) => {
      const entry = archive.entry({ name, size, mode, mtime }, (err) => (err ? reject(err) : resolve()));
      createReadStream(path).on("error", reject).pipe(entry);
    });
  };
  // Entries are written one after another in the background while the engine reads the stream.
  (async () => {
    await add("node", nodeBinary, 0o755);
    for await (const file of packageFiles(npmTarball, (path) => NPM_SKIP.test(path))) {
      archive.entry({ name: `npm/${file.path}`, mode: file.executable ? 0o755 : 0o644, mtime }, file.content);
    }
    for (const file of RUNTIME_FILES) await add(file, `${RUNTIME_DIR}${file}`, 0o644);
    archive.finalize();
  })().catch((err) => archive.destroy(err));
  return Readable.from(archive);
}
