/**
 * kilnTools(): the five sandbox tools as an AI SDK ToolSet, built with `tool()` from `ai`.
 * The sandbox lifecycle (lazy getOrCreate, idle release, reopening) is core's ConversationSandboxes.
 */
import {
  ConversationSandboxes,
  type CreateSandboxOptions,
  clip,
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  declaredNetwork,
  describeTools,
  formatCommand,
  formatExecution,
  formatListing,
  type ImageMediaType,
  type Kiln,
  KilnError,
  type KilnToolOutput,
  type Limits,
  MAX_LIST_ENTRIES,
  RESTARTED_NOTES,
  type Sandbox,
  sandboxNameFor,
  type UseInfo,
} from "@kiln/core";
import { type Tool, tool } from "ai";
import { KEY_PREFIX, MAX_IMAGE_BYTES, MAX_READ_BYTES } from "./defaults.ts";
import { toModelOutput } from "./model-output.ts";
import { resolvePath } from "./paths.ts";
import {
  inputSchemas,
  type ListFilesInput,
  type ReadFileInput,
  type RunCodeInput,
  type RunCommandInput,
  type WriteFileInput,
} from "./schemas.ts";

/** Use this sandbox. The tool set never starts, stops or deletes it: its owner does. */
export interface GivenSandbox {
  sandbox: Sandbox;
}

/** Make a sandbox on the first tool call (core's ConversationSandboxes, one conversation per tool set). */
export interface LazySandbox {
  kiln: Kiln;
  /**
   * Options of the sandbox made on first use (its name comes from `key`). Its labels gain
   * `adapter: "vercel-ai"`; `autoStopMs` defaults to idleTimeoutMs, and without `key` `autoDeleteMs` to 1 h.
   * @default {}
   */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Stop the sandbox after this long without a tool call. Its files stay; the next tool call
   * starts it again, with fresh interpreters. 0 or Infinity keeps it running. The same value goes
   * to core as `autoStopMs`, which holds even when this process dies.
   * @default 900_000 (15 min)
   */
  idleTimeoutMs?: number;
  /**
   * A conversation id. With it the sandbox is `kiln.getOrCreate(sandboxNameForKey(key))` ("ai-" + key
   * when that is a valid name), so a conversation continues in the same sandbox from any process;
   * without it the tool set has a sandbox of its own.
   * @default none
   */
  key?: string;
}

export type SandboxSource = GivenSandbox | LazySandbox;

export interface ReleaseOptions {
  /** Delete a keyed sandbox instead of stopping it (the conversation is over). @default false */
  delete?: boolean;
}

/**
 * The sandbox name of a conversation key: `"ai-" + key` when that is a valid sandbox name, else a
 * readable slug of the key plus a 16-hex hash of it, so two keys never share a sandbox.
 */
export function sandboxNameForKey(key: string): string {
  return sandboxNameFor(KEY_PREFIX, key);
}

export interface KilnToolsSettings {
  /** Time limit of one run_code or run_command call; the model is told it. @default 60_000 */
  timeoutMs?: number;
  /** Characters kept per stream (stdout, stderr, traceback, file text) in what the model reads. @default 12_000 */
  maxOutputChars?: number;
}

/** `{ sandbox }` or `{ kiln, sandboxOptions?, key? }`, plus the tools' settings. */
export type KilnToolsOptions = SandboxSource & KilnToolsSettings;

/**
 * The five tools, usable as `tools` of generateText, streamText and ToolLoopAgent.
 * `await using` (or disposeKilnTools) releases the sandbox the tool set made.
 */
export type KilnToolSet = {
  run_code: Tool<RunCodeInput, KilnToolOutput>;
  run_command: Tool<RunCommandInput, string>;
  read_file: Tool<ReadFileInput, KilnToolOutput>;
  write_file: Tool<WriteFileInput, string>;
  list_files: Tool<ListFilesInput, string>;
  /** Releases the sandbox the tool set made, like disposeKilnTools(). */
  [Symbol.asyncDispose](): Promise<void>;
};

/** What a tool set runs its calls in, and how it lets go of it. */
interface Binding {
  use<T>(work: (sandbox: Sandbox, info: UseInfo) => Promise<T>): Promise<T>;
  release(options?: ReleaseOptions): Promise<void>;
}

const bindings = new WeakMap<object, Binding>();

function bind(source: SandboxSource): Binding {
  if (source && typeof source === "object" && "sandbox" in source && source.sandbox) {
    const { sandbox } = source;
    return { use: (work) => work(sandbox, {}), release: async () => {} };
  }
  if (!source || typeof source !== "object" || !("kiln" in source) || !source.kiln)
    throw new TypeError("kilnTools: pass { sandbox } or { kiln, sandboxOptions?, key? }");
  const { kiln, key, sandboxOptions } = source;
  const conversations = new ConversationSandboxes({
    kiln,
    namePrefix: KEY_PREFIX,
    idleTimeoutMs: source.idleTimeoutMs,
    sandboxOptions: { ...sandboxOptions, labels: { adapter: "vercel-ai", ...sandboxOptions?.labels } },
  });
  const name = conversations.nameFor(key); // an invalid key fails here, not on the first tool call
  return {
    use: (work) => conversations.use(key, work),
    async release(options = {}) {
      await conversations.close();
      if (key === undefined || !options.delete) return;
      try {
        await (await kiln.get(name)).delete();
      } catch (err) {
        if (!(KilnError.isInstance(err) && err.code === "SANDBOX_NOT_FOUND")) throw err;
      }
    },
  };
}

const IMAGE_TYPES: Record<string, ImageMediaType> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
};

/** Mistakes the model can correct (a wrong path, a directory for a file) come back as text. */
function modelFacingError(err: unknown): string | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  if (err.code === "FILE_NOT_FOUND" || err.code === "FILE_ERROR" || err.code === "INVALID_ARGUMENT")
    return `Error: ${err.message}`;
  return undefined;
}

async function orModelError<T>(work: () => Promise<T>, wrap: (message: string) => T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const message = modelFacingError(err);
    if (message === undefined) throw err;
    return wrap(message);
  }
}

const textOnly = (text: string): KilnToolOutput => ({ text, images: [] });

async function readForModel(sandbox: Sandbox, path: string, maxOutputChars: number): Promise<KilnToolOutput> {
  const entry = await sandbox.files.stat(path);
  if (entry.type === "directory") return textOnly(`${path} is a directory: use list_files to see what is in it.`);
  const mediaType = IMAGE_TYPES[path.slice(path.lastIndexOf(".") + 1).toLowerCase()];
  if (mediaType && entry.size <= MAX_IMAGE_BYTES) {
    const bytes = await sandbox.files.read(path);
    return {
      text: `${path} (${mediaType}, ${bytes.length} bytes) is attached as an image.`,
      images: [{ mediaType, data: Buffer.from(bytes).toString("base64") }],
    };
  }
  if (entry.type === "file" && entry.size > MAX_READ_BYTES) {
    // Only the start of a big file is worth moving: the model sees maxOutputChars of it anyway.
    const head = await sandbox.exec(["head", "-c", String(MAX_READ_BYTES), path]);
    return textOnly(
      `[${path} is ${entry.size} bytes; showing its beginning. Use run_command (sed -n, tail, grep) to read other parts.]\n` +
        clip(head.stdout, maxOutputChars),
    );
  }
  const bytes = await sandbox.files.read(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = "\0";
  }
  if (text.includes("\0"))
    return textOnly(`${path} is a binary file of ${bytes.length} bytes: inspect it with run_code instead.`);
  return textOnly(text === "" ? `${path} is empty.` : clip(text, maxOutputChars));
}

/**
 * The five Kiln tools for the AI SDK: run_code, run_command, read_file, write_file, list_files.
 *
 * With `{ sandbox }` they use that sandbox. With `{ kiln }` they make one on the first call:
 * their own (deleted on dispose), or with `key` the conversation's sandbox
 * `kiln.getOrCreate(sandboxNameForKey(key))` (stopped on dispose, so the conversation can continue later,
 * in this or another process).
 */
export function kilnTools(options: KilnToolsOptions): KilnToolSet {
  const binding = bind(options);
  const limits: Limits = {
    timeoutMs: options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
    maxOutputChars: options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS,
  };
  const descriptions = describeTools({
    ...limits,
    network: "kiln" in options ? declaredNetwork(options.sandboxOptions) : undefined,
  });

  const tools = {
    run_code: tool({
      description: descriptions.run_code,
      inputSchema: inputSchemas.run_code,
      execute: ({ code, language }, { abortSignal }) =>
        binding.use(async (sandbox, { restarted }) => {
          const execution = await sandbox.runCode(code, { language, timeoutMs: limits.timeoutMs, signal: abortSignal });
          const output = formatExecution(execution, limits);
          return restarted ? { ...output, text: `${RESTARTED_NOTES[restarted]}\n\n${output.text}` } : output;
        }),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    run_command: tool({
      description: descriptions.run_command,
      inputSchema: inputSchemas.run_command,
      execute: ({ command }, { abortSignal }) =>
        binding.use(async (sandbox) =>
          formatCommand(await sandbox.exec(command, { timeoutMs: limits.timeoutMs, signal: abortSignal }), limits),
        ),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    read_file: tool({
      description: descriptions.read_file,
      inputSchema: inputSchemas.read_file,
      execute: ({ path }) =>
        binding.use((sandbox) =>
          orModelError(() => readForModel(sandbox, resolvePath(path), limits.maxOutputChars), textOnly),
        ),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    write_file: tool({
      description: descriptions.write_file,
      inputSchema: inputSchemas.write_file,
      execute: ({ path, content }) =>
        binding.use((sandbox) =>
          orModelError(
            async () => {
              const full = resolvePath(path);
              await sandbox.files.write(full, content);
              return `Wrote ${Buffer.byteLength(content)} bytes to ${full}.`;
            },
            (message) => message,
          ),
        ),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    list_files: tool({
      description: descriptions.list_files,
      inputSchema: inputSchemas.list_files,
      execute: ({ path }) =>
        binding.use((sandbox) =>
          orModelError(
            async () => {
              const full = resolvePath(path ?? ".");
              return formatListing(full, await sandbox.files.list(full), MAX_LIST_ENTRIES);
            },
            (message) => message,
          ),
        ),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
  };

  // Not enumerable: the AI SDK sees exactly the five tools, and `{ ...tools }` copies only them.
  Object.defineProperty(tools, Symbol.asyncDispose, { value: () => binding.release() });
  bindings.set(tools, binding);
  return tools as KilnToolSet;
}

function bindingOf(tools: object): Binding {
  const binding = bindings.get(tools);
  if (!binding) throw new TypeError("not a tool set made by kilnTools() (a spread copy loses the link)");
  return binding;
}

/**
 * Releases the sandbox a tool set made: its own is deleted, a keyed one is stopped (or deleted
 * with `{ delete: true }`), a given one is left alone. Later tool calls fail. Idempotent.
 */
export function disposeKilnTools(tools: KilnToolSet, options?: ReleaseOptions): Promise<void> {
  return bindingOf(tools).release(options);
}

/** The tool set's sandbox (made now if no tool has run yet), e.g. to download what the model made. */
export function getKilnSandbox(tools: KilnToolSet): Promise<Sandbox> {
  return bindingOf(tools).use(async (sandbox) => sandbox);
}
