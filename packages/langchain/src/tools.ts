/**
 * createKilnTools: the five sandbox tools as LangChain tools (`tool()` from @langchain/core).
 */
import { posix } from "node:path";
import {
  ConversationSandboxes,
  type CreateSandboxOptions,
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  declaredNetwork,
  formatCommand,
  formatExecution,
  formatListing,
  InvalidArgumentError,
  type Kiln,
  KilnError,
  type Language,
  MAX_LIST_ENTRIES,
  RESTARTED_NOTES,
  type ReleaseMode,
  type Sandbox,
  sandboxNameFor,
  type UseInfo,
} from "@kiln/core";
import { type StructuredTool, type ToolRunnableConfig, tool } from "@langchain/core/tools";
import { ADAPTER_LABEL, DEFAULT_NAME_PREFIX, MAX_READ_FILE_BYTES, WORKDIR } from "./defaults.ts";
import { formatFile, formatSize, type ToolContent, toContent } from "./format.ts";
import { descriptions, type Limits, schemas } from "./schemas.ts";

interface CommonOptions {
  /** Time limit of each run_code and run_command call. @default 60_000 */
  timeoutMs?: number;
  /** Each stream (stdout, stderr, traceback, file text) is cut to this many characters for the model. @default 12_000 */
  maxOutputChars?: number;
}

/** Use this sandbox for every call. You own it: close() does not stop or delete it. */
export interface KilnToolsWithSandbox extends CommonOptions {
  sandbox: Sandbox;
  kiln?: never;
  sandboxOptions?: never;
}

/**
 * Open one sandbox per LangGraph thread (`configurable.thread_id`), lazily, on its first tool
 * call, through core's `ConversationSandboxes`.
 */
export interface KilnToolsWithKiln extends CommonOptions {
  kiln: Kiln;
  sandbox?: never;
  /** Options of the sandboxes created (`name` comes from the thread id). @default {} */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Release a thread's sandbox after this long without a tool call; 0 or Infinity never does.
   * Also the sandboxes' `autoStopMs` (unless sandboxOptions sets one), which holds if this process dies.
   * @default 900_000 (15 min)
   */
  idleTimeoutMs?: number;
  /**
   * How a thread's sandbox is released when idle or on close(): "stop" keeps its files so the
   * conversation can resume (even in another process), "delete" removes it. The tool set's own
   * sandbox (calls without a thread id) is stopped when idle and always deleted on close().
   * @default "stop"
   */
  release?: ReleaseMode;
  /** Sandbox names are `namePrefix + thread id` (hashed when the id is long or has other characters). @default "lc-" */
  namePrefix?: string;
}

export type KilnToolsOptions = KilnToolsWithSandbox | KilnToolsWithKiln;

/** The five tools, in an array you pass to `createAgent({ tools })`, plus a way to release their sandboxes. */
export type KilnTools = StructuredTool[] & {
  /** Releases the sandboxes these tools opened (see `release`); the tools cannot be used after it. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** The stable sandbox name of a LangGraph thread: core's `sandboxNameFor(prefix, threadId)`. */
export function sandboxNameForThread(threadId: string, prefix: string = DEFAULT_NAME_PREFIX): string {
  return sandboxNameFor(prefix, threadId);
}

function withNote(content: ToolContent, restarted: UseInfo["restarted"]): ToolContent {
  if (!restarted) return content;
  const note = RESTARTED_NOTES[restarted];
  return typeof content === "string" ? `${note}\n\n${content}` : [{ type: "text", text: note }, ...content];
}

/** The conversation a tool call belongs to: LangGraph's thread id, passed in the run config. */
export function threadIdOf(config: ToolRunnableConfig | undefined): string | undefined {
  const id: unknown = config?.configurable?.thread_id;
  return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
}

/**
 * Errors the model caused and can fix (a missing file, a path outside the rules, an empty
 * command): returned to it as text. Anything else is an infrastructure fault and is thrown.
 */
function modelError(err: unknown): string | undefined {
  if (!KilnError.isInstance(err)) return undefined;
  if (err.code === "FILE_NOT_FOUND" || err.code === "FILE_ERROR" || err.code === "INVALID_ARGUMENT") {
    return `Error: ${err.message}`;
  }
  return undefined;
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new InvalidArgumentError(field, `must be a positive number; got ${value}`);
  return value;
}

function absolute(path: string): string {
  return posix.resolve(WORKDIR, path);
}

/**
 * The five Kiln tools for a LangChain agent: run_code, run_command, read_file, write_file and
 * list_files. Charts from run_code reach the model as standard image content blocks.
 *
 * @example
 * const tools = createKilnTools({ kiln: new Kiln() });
 * const agent = createAgent({ model, tools, checkpointer });
 * await agent.invoke({ messages }, { configurable: { thread_id: "chat-1" } });
 */
export function createKilnTools(options: KilnToolsOptions): KilnTools {
  const limits: Limits = {
    timeoutMs: positive("timeoutMs", options.timeoutMs, DEFAULT_TOOL_TIMEOUT_MS),
    maxOutputChars: positive("maxOutputChars", options.maxOutputChars, DEFAULT_MAX_OUTPUT_CHARS),
    defaultLanguage: "python",
  };
  /** Runs `work` in the sandbox of a thread (undefined: outside any thread). */
  let use: <T>(threadId: string | undefined, work: (sandbox: Sandbox, info: UseInfo) => Promise<T>) => Promise<T>;
  let close: () => Promise<void>;
  if (options.sandbox) {
    // The caller owns this sandbox: every call uses it, and close() leaves it alone.
    const given = options.sandbox;
    use = (_threadId, work) => work(given, {});
    close = async () => {};
    limits.defaultLanguage = options.sandbox.language ?? "python";
  } else if (options.kiln) {
    const sandboxes = new ConversationSandboxes({
      kiln: options.kiln,
      namePrefix: options.namePrefix ?? DEFAULT_NAME_PREFIX,
      sandboxOptions: {
        ...options.sandboxOptions,
        labels: { ...options.sandboxOptions?.labels, ...ADAPTER_LABEL },
      },
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
      ...(options.release === undefined ? {} : { release: options.release }),
    });
    use = (threadId, work) => sandboxes.use(threadId, work);
    close = () => sandboxes.close();
    limits.defaultLanguage = options.sandboxOptions?.language ?? "python";
    limits.network = declaredNetwork(options.sandboxOptions);
  } else {
    throw new InvalidArgumentError("options", "pass { sandbox } or { kiln, sandboxOptions? }");
  }

  const { timeoutMs, maxOutputChars } = limits;
  const description = descriptions(limits);
  const schema = schemas(limits);

  /** Runs one tool call in its conversation's sandbox; mistakes the model can fix come back as text. */
  function call(config: ToolRunnableConfig, work: (sandbox: Sandbox) => Promise<ToolContent>): Promise<ToolContent> {
    return use(threadIdOf(config), async (sandbox, { restarted }) => {
      try {
        return withNote(await work(sandbox), restarted);
      } catch (err) {
        const text = modelError(err);
        if (text === undefined) throw err;
        return withNote(text, restarted);
      }
    });
  }

  const runCode = tool(
    ({ code, language }, config) =>
      call(config, async (sandbox) => {
        const lang: Language = language ?? limits.defaultLanguage;
        const execution = await sandbox.runCode(code, { language: lang, timeoutMs, signal: config.signal });
        return toContent(formatExecution(execution, { timeoutMs, maxOutputChars }));
      }),
    { name: "run_code", description: description.run_code, schema: schema.run_code },
  );

  const runCommand = tool(
    ({ command }, config) =>
      call(config, async (sandbox) => {
        const result = await sandbox.exec(command, { timeoutMs, signal: config.signal });
        return formatCommand(result, { timeoutMs, maxOutputChars });
      }),
    { name: "run_command", description: description.run_command, schema: schema.run_command },
  );

  const readFile = tool(
    ({ path }, config) =>
      call(config, async (sandbox) => {
        const entry = await sandbox.files.stat(path);
        if (entry.type === "directory") return `${absolute(path)} is a directory: use list_files to see what is in it.`;
        if (entry.size > MAX_READ_FILE_BYTES) {
          return `${absolute(path)} is ${formatSize(entry.size)}, too large to read whole: look at parts of it with run_command (head, tail, grep) or run_code.`;
        }
        return formatFile(absolute(path), await sandbox.files.read(path), maxOutputChars);
      }),
    { name: "read_file", description: description.read_file, schema: schema.read_file },
  );

  const writeFile = tool(
    ({ path, content }, config) =>
      call(config, async (sandbox) => {
        await sandbox.files.write(path, content);
        return `Wrote ${formatSize(Buffer.byteLength(content))} to ${absolute(path)}.`;
      }),
    { name: "write_file", description: description.write_file, schema: schema.write_file },
  );

  const listFiles = tool(
    ({ path }, config) =>
      call(config, async (sandbox) =>
        formatListing(absolute(path ?? "."), await sandbox.files.list(path ?? "."), MAX_LIST_ENTRIES),
      ),
    { name: "list_files", description: description.list_files, schema: schema.list_files },
  );

  return Object.assign([runCode, runCommand, readFile, writeFile, listFiles] as StructuredTool[], {
    close,
    [Symbol.asyncDispose]: close,
  });
}
