/**
 * The public shapes of @kiln/core (design/api.md). Every option documents its default.
 */
import type Dockerode from "dockerode";
import type { Engine } from "./engine/engine.ts";

export type Language = "python" | "javascript" | "typescript";
export const LANGUAGES: readonly Language[] = ["python", "javascript", "typescript"];

export type SandboxState = "running" | "paused" | "stopped" | "error";

export type RunStatus = "ok" | "error" | "timeout" | "oom" | "killed";

export interface KilnOptions {
  /**
   * A Kiln server's URL (`kiln serve`): this Kiln then works over HTTP, with the same API.
   * Without it, KILN_URL is used unless `engine`, `docker` or `pool` is given. @default KILN_URL, else in-process
   */
  url?: string;
  /** The server's API key (`kiln_...`). @default KILN_API_KEY */
  apiKey?: string;
  /** A dockerode instance or its options. @default DOCKER_HOST, else the local socket */
  docker?: Dockerode | Dockerode.DockerOptions;
  /**
   * The container engine behind every sandbox (any `Engine` implementation: a fake in tests, a
   * Kubernetes engine). When set, `docker` is ignored. @default a Docker engine (see `docker`)
   */
  engine?: Engine;
  /** Runtime image for new sandboxes. @default the built-in runtime image (built by images.ensure()) */
  image?: string;
  /** Warm pool of started sandboxes of the default shape. @default false */
  pool?: { size: number } | false;
  /** Defaults merged under every create() call's options. @default {} */
  defaults?: Partial<CreateSandboxOptions>;
}

export interface SandboxResources {
  /** CPU cores (fractions allowed). @default 1 */
  cpus?: number;
  /** Memory limit in MiB; swap is the same, so no swap. @default 1024 */
  memoryMb?: number;
  /**
   * Writable-layer quota in MiB (bytes and, on btrfs, inodes). Needs an engine whose storage can
   * cap it (Kiln's setup gives dockerd a btrfs data root), else NotSupportedError.
   * @default 4096 where the engine can cap it; no cap elsewhere
   */
  diskMb?: number;
  /** Process/thread limit, at most 32768. @default 512 */
  pids?: number;
}

export interface VolumeAttachment {
  volume: string;
  /** Absolute path inside the sandbox. */
  mountPath: string;
  /** @default false */
  readOnly?: boolean;
}

export interface CreateSandboxOptions {
  /** Unique; kiln.get(name) finds it. @default none (reach it by id) */
  name?: string;
  /** @default KilnOptions.image */
  image?: string;
  /** Restore from a snapshot instead of an image. @default none */
  snapshot?: string;
  /** Default language of runCode. @default "python" */
  language?: Language;
  /** @default {} */
  labels?: Record<string, string>;
  /** Environment of every command and code context. @default {} */
  env?: Record<string, string>;
  resources?: SandboxResources;
  /**
   * Isolation tier: "runc" (Linux namespaces, cgroups, seccomp) or "gvisor" (gVisor's runsc, a
   * user-space kernel between the sandbox and the host; needs runsc registered with the engine,
   * supports only network "none"). @default "runc"
   */
  runtime?: "runc" | "gvisor";
  /** "none": no network at all; "egress": outbound access. @default "none" */
  network?: "none" | "egress" | { allow: string[] };
  /** Named volumes to mount. @default [] */
  volumes?: VolumeAttachment[];
  /** Stop after this long without API activity. @default never */
  autoStopMs?: number;
  /** Delete after this long stopped. @default never */
  autoDeleteMs?: number;
  signal?: AbortSignal;
}

export interface SandboxInfo {
  id: string;
  name?: string;
  state: SandboxState;
  labels: Record<string, string>;
  createdAt: string;
  image: string;
  /** The default language of runCode. */
  language: Language;
  /** The network policy it was created with. */
  network: "none" | "egress" | { allow: string[] };
  /** The limits it runs with (defaults filled in). */
  resources: { cpus: number; memoryMb: number; pids: number; diskMb?: number };
}

export interface ExecOptions {
  /** Working directory. @default "/workspace" */
  cwd?: string;
  /** Merged over the sandbox's environment. @default {} */
  env?: Record<string, string>;
  /**
   * The command's stdin: bytes given up front, or an async iterable (a Node stream, a web
   * ReadableStream, an async generator) forwarded live as it yields; stdin closes when it ends.
   * @default none (stdin is /dev/null)
   */
  stdin?: string | Uint8Array | AsyncIterable<Uint8Array | string>;
  /** Kill the command's whole process group after this long; status "timeout". @default 60_000 */
  timeoutMs?: number;
  /** Per stream; beyond it output is cut and truncated = true. @default 1 MiB */
  maxOutputBytes?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
}

export interface CommandResult {
  exitCode: number;
  /** Decoded as UTF-8; invalid sequences become U+FFFD. */
  stdout: string;
  stderr: string;
  status: RunStatus;
  truncated: boolean;
  durationMs: number;
}

export interface RunCodeOptions {
  /** @default the sandbox's language, else "python" */
  language?: Language;
  /** Named interpreter state. @default "default" (one per language) */
  context?: string;
  /** @default 60_000 */
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Each display output and the final value, as it appears (they are in Execution.results too). */
  onResult?: (result: Result) => void;
  signal?: AbortSignal;
}

/** A MIME bundle: one result may carry several representations. */
export interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  json?: unknown;
  /** base64 */
  png?: string;
  /** base64 */
  jpeg?: string;
  /** SVG markup */
  svg?: string;
  /** True for the final expression's value. */
  isMainResult: boolean;
}

export interface ExecutionError {
  name: string;
  value: string;
  traceback: string;
}

export interface Execution {
  results: Result[];
  stdout: string;
  stderr: string;
  /** The user's code failed: data, not a throw. */
  error?: ExecutionError;
  status: RunStatus;
  truncated: boolean;
  durationMs: number;
}

export interface FileEntry {
  name: string;
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  mode: number;
  modifiedAt: string;
}

export interface SnapshotInfo {
  name: string;
  createdAt: string;
  sizeBytes: number;
  /** The sandbox it was taken from. */
  sourceSandboxId?: string;
  /**
   * Only on the value snapshot() returns: per Python context, the variables saved with the
   * filesystem, and by name those that could not be (unpicklable values). A busy context is
   * skipped, not interrupted. Restored into the same contexts of a sandbox created from it.
   */
  state?: Record<
    string,
    { saved: string[]; failed: { name: string; reason: string }[]; busy?: boolean; error?: string }
  >;
}

export interface VolumeInfo {
  name: string;
  createdAt: string;
  labels: Record<string, string>;
}

export interface ImageProgressEvent {
  phase: "base" | "build" | "done";
  message: string;
}
