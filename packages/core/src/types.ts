/**
 * The public shapes of @kiln/core (docs/api.md). Every option documents its default.
 */
import type { Engine } from "./engine/engine.ts";

export type Language = "python" | "javascript" | "typescript";
export const LANGUAGES: readonly Language[] = ["python", "javascript", "typescript"];

export type SandboxState = "running" | "paused" | "stopped" | "error";

export type RunStatus = "ok" | "error" | "timeout" | "oom" | "killed";

/**
 * Where the Docker engine is: the connection fields of dockerode's `DockerOptions`, declared here
 * so that consumers need no `@types/dockerode` (the engine folder is the only dockerode importer).
 */
export interface DockerConnectionOptions {
  /** A Unix socket (or Windows named pipe). @default DOCKER_HOST, else /var/run/docker.sock */
  socketPath?: string;
  host?: string;
  port?: number | string;
  protocol?: "http" | "https" | "ssh";
  /** TLS material for https (PEM strings or buffers). */
  ca?: string | string[] | Uint8Array | Uint8Array[];
  cert?: string | string[] | Uint8Array | Uint8Array[];
  key?: string | string[] | Uint8Array | Uint8Array[];
  /** Engine API version, e.g. "v1.43". @default negotiated */
  version?: string;
  /** Request timeout in ms. @default none */
  timeout?: number;
  username?: string;
  headers?: Record<string, string>;
  sshOptions?: Record<string, unknown>;
}

/** A dockerode instance you made yourself (Kiln uses it as is). Only its shape matters here. */
export interface DockerClient {
  modem: object;
  ping(...args: never[]): unknown;
}

export interface KilnOptions {
  /**
   * A Kiln server's URL (`kiln serve`): this Kiln then works over HTTP, with the same API.
   * Without it, KILN_URL is used unless `engine`, `docker` or `pool` is given. @default KILN_URL, else in-process
   */
  url?: string;
  /** The server's API key (`kiln_...`). @default KILN_API_KEY */
  apiKey?: string;
  /** A dockerode instance or its connection options. @default DOCKER_HOST, else the local socket */
  docker?: DockerClient | DockerConnectionOptions;
  /**
   * The container engine behind every sandbox (any `Engine` implementation: a fake in tests, a
   * Kubernetes engine). When set, `docker` is ignored. @default a Docker engine (see `docker`)
   */
  engine?: Engine;
  /** Runtime image for new sandboxes. @default the built-in runtime image (built by images.ensure()) */
  image?: string;
  /**
   * Warm pool of started sandboxes of the default shape, or a list of pools, one per shape:
   * `[{ size: 2 }, { size: 2, image: "ds" }, { size: 1, snapshot: "base-env" }]`. @default false
   */
  pool?: { size: number } | { size: number; image?: string; snapshot?: string }[] | false;
  /** Defaults merged under every create() call's options. @default {} */
  defaults?: Partial<CreateSandboxOptions>;
}

export interface SandboxResources {
  /** CPU cores (fractions allowed). @default 1 */
  cpus?: number;
  /** Memory limit in MiB; swap is the same, so no swap. @default 1024 */
  memoryMb?: number;
  /**
   * Disk cap in MiB, bytes and inodes: the engine's storage quota where it has one, else (Docker
   * on overlay2 over ext4) a loop-mounted ext4 disk holding /workspace, the home directory and
   * /var/tmp (docs/security.md). NotSupportedError on an engine that can do neither.
   * @default 4096 where the engine can cap it (Docker on Linux: always, unless KILN_LOOP_DISKS=0)
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
  /**
   * "none": no network at all; "egress": outbound access; `{ allow: [...] }`: only the listed
   * domains (`pypi.org`), wildcards (`*.example.org`), IPs, CIDRs and presets (`"pypi"`, `"npm"`,
   * `"debian"`, `"github"`), through Kiln's egress proxy (HTTP and HTTPS). @default "none"
   */
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
  /** The network policy (an allow-list: the rules in force now, presets expanded). */
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
  /**
   * Output or results were cut: stdout/stderr past maxOutputBytes each, or results past
   * DEFAULT_MAX_RESULT_BYTES (16 MiB) in all, after which later results are dropped.
   */
  truncated: boolean;
  /** Wall time of the call as the host saw it (queueing and transport included). */
  durationMs: number;
  /**
   * The context's interpreter was restarted, so its variables are gone: during this execution
   * (it crashed, ran out of memory, or ignored an interrupt), or since the previous execution on
   * this context (its process died while idle). Callers need not parse error text for this.
   */
  contextRestarted?: boolean;
  /** How long the code ran inside the sandbox, measured by the agent (no queueing or transport). */
  agentDurationMs?: number;
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

/** One decision of Kiln's egress proxy for an allow-list sandbox (`sandbox.networkLog()`). */
export interface NetworkDecision {
  /** ISO time of the decision. */
  at: string;
  host: string;
  port: number;
  allowed: boolean;
  /** `allowed by "<rule>"`, or why not, naming the rule to add. */
  reason: string;
}

// --- Terminals, background processes, preview URLs (sandbox.pty, sandbox.processes, sandbox.previewUrl) ---

export interface PtyCreateOptions {
  /** Terminal width in columns. */
  cols: number;
  /** Terminal height in rows. */
  rows: number;
  /** The program: a string through `sh -c`, an array as argv. @default a login shell (bash -l) */
  command?: string | string[];
  /** @default "/workspace" */
  cwd?: string;
  /** Merged over the sandbox's environment; TERM is xterm-256color unless set here. @default {} */
  env?: Record<string, string>;
}

/** A handle on a terminal session. The session lives in the sandbox: closing the handle detaches. */
export interface Pty {
  /** The session's id: sandbox.pty.connect(id) re-attaches (from any process). */
  readonly id: string;
  /** Output bytes as they come (the scrollback first on connect). Returns a function that unsubscribes. */
  onData(callback: (bytes: Uint8Array) => void): () => void;
  /** Input (keystrokes; "\x03" is Ctrl-C). Applied in call order, after any resize() called before it. */
  write(data: string | Uint8Array): void;
  resize(cols: number, rows: number): Promise<void>;
  /** Ends the program (SIGKILL, to its foreground job too). */
  kill(): Promise<void>;
  /** Its exit code once it ends (128 + signal if killed). */
  wait(): Promise<{ exitCode: number }>;
  /** Stop receiving output for a while (a slow consumer); resume() goes on from where it stopped, skipping what the agent no longer keeps. */
  pause(): void;
  resume(): void;
  /** Detaches this handle; the session goes on. */
  close(): void;
}

export interface ProcessStartOptions {
  /** @default "/workspace" */
  cwd?: string;
  /** Merged over the sandbox's environment. @default {} */
  env?: Record<string, string>;
  /** A label to find it by in list(). @default none */
  tag?: string;
}

export interface ProcessInfo {
  pid: number;
  tag?: string;
  command: string;
  running: boolean;
  exitCode?: number;
}

export interface ProcessLogsOptions {
  /** Keep streaming until the process ends (or `signal` aborts). @default false */
  follow?: boolean;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
}

export interface PreviewUrlOptions {
  /** How long the URL (its token) works. @default 3_600_000 (1 h); at most 30 days */
  expiresInMs?: number;
}

export interface PreviewUrl {
  /** Opens the sandbox's port; carries the token in its query (the first visit sets a cookie). */
  url: string;
  /** For the `x-kiln-preview-token` header (API clients, WebSocket clients). */
  token: string;
  /** ISO-8601. */
  expiresAt: string;
}
