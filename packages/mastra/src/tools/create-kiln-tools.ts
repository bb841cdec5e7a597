/**
 * createKilnTools: the five sandbox tools as Mastra tools (createTool), bound to one sandbox or
 * to one sandbox per Mastra thread.
 */
import { posix } from "node:path";
import {
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  declaredNetwork,
  type FormatOptions,
  MAX_LIST_ENTRIES,
  RESTARTED_NOTES,
  type Sandbox,
} from "@kiln/core";
import { MASTRA_RESOURCE_ID_KEY, MASTRA_THREAD_ID_KEY } from "@mastra/core/request-context";
import { createTool } from "@mastra/core/tools";
import { type ConversationIds, type SandboxBinding, sandboxProvider } from "../binding/sandbox-binding.ts";
import { DEFAULT_IDLE_TIMEOUT_MS, MAX_IMAGE_BYTES, MAX_READ_BYTES, WORKDIR } from "../defaults.ts";
import { describeTools } from "./descriptions.ts";
import {
  commandOutput,
  cutHead,
  executionOutput,
  formatFile,
  formatModelFault,
  listingOutput,
  toModelOutput,
} from "./format.ts";
import {
  type KilnToolOutput,
  kilnToolOutput,
  listFilesInput,
  readFileInput,
  runCodeInput,
  runCommandInput,
  writeFileInput,
} from "./schemas.ts";

export interface KilnToolsLimits {
  /** Time limit of each run_code and run_command call. @default 60_000 */
  timeoutMs?: number;
  /** Characters of each output section (stdout, stderr, traceback, file text) the model sees. @default 12_000 */
  maxOutputChars?: number;
}

export type KilnToolsOptions = SandboxBinding & KilnToolsLimits;

/** The part of Mastra's tool execution context the tools read. */
interface CallContext {
  agent?: { threadId?: string; resourceId?: string };
  requestContext?: { get(key: string): unknown };
  abortSignal?: AbortSignal;
}

function conversationOf(context: CallContext | undefined): ConversationIds {
  const fromRequest = (key: string) => {
    const value = context?.requestContext?.get(key);
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  return {
    threadId: context?.agent?.threadId || fromRequest(MASTRA_THREAD_ID_KEY),
    resourceId: context?.agent?.resourceId || fromRequest(MASTRA_RESOURCE_ID_KEY),
  };
}

/**
 * The five tools, keyed by the names the model sees. With `{ kiln }` the tools own the sandboxes
 * they create: `await tools[Symbol.asyncDispose]()` (or `await using`) releases them.
 */
export function createKilnTools(options: KilnToolsOptions) {
  const limits: FormatOptions = {
    timeoutMs: options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
    maxOutputChars: options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS,
  };
  const sandboxes = sandboxProvider(options);
  const perConversation = "kiln" in options;
  const descriptions = describeTools({
    ...limits,
    idleTimeoutMs: perConversation ? idleTimeoutOf(options.idleTimeoutMs) : undefined,
    network: perConversation ? declaredNetwork(options.sandboxOptions) : undefined,
  });

  /** Runs one call in the conversation's sandbox; errors the model can fix come back as text. */
  const inSandbox = (context: CallContext | undefined, work: (sandbox: Sandbox) => Promise<KilnToolOutput>) =>
    sandboxes.use(conversationOf(context), async (sandbox, { restarted }) => {
      let output: KilnToolOutput;
      try {
        output = await work(sandbox);
      } catch (err) {
        const fault = formatModelFault(err);
        if (!fault) throw err;
        output = fault;
      }
      return restarted ? { ...output, text: `${RESTARTED_NOTES[restarted]}\n\n${output.text}` } : output;
    });
  const signalOf = (context: CallContext | undefined) => (context?.abortSignal ? { signal: context.abortSignal } : {});

  const tools = {
    run_code: createTool({
      id: "run_code",
      description: descriptions.run_code,
      inputSchema: runCodeInput,
      outputSchema: kilnToolOutput,
      toModelOutput,
      execute: async ({ code, language }, context) =>
        inSandbox(context, async (sandbox) => {
          const execution = await sandbox.runCode(code, {
            language: language ?? "python",
            timeoutMs: limits.timeoutMs,
            ...signalOf(context),
          });
          return executionOutput(execution, limits);
        }),
    }),
    run_command: createTool({
      id: "run_command",
      description: descriptions.run_command,
      inputSchema: runCommandInput,
      outputSchema: kilnToolOutput,
      toModelOutput,
      execute: async ({ command }, context) =>
        inSandbox(context, async (sandbox) => {
          const result = await sandbox.exec(command, { timeoutMs: limits.timeoutMs, ...signalOf(context) });
          return commandOutput(result, limits);
        }),
    }),
    read_file: createTool({
      id: "read_file",
      description: descriptions.read_file,
      inputSchema: readFileInput,
      outputSchema: kilnToolOutput,
      toModelOutput,
      execute: async ({ path }, context) =>
        inSandbox(context, async (sandbox) => {
          const entry = await sandbox.files.stat(path);
          if (entry.type === "directory") {
            return { ok: false, text: `${entry.path} is a directory: use list_files to see what is in it.` };
          }
          if (entry.size <= MAX_READ_BYTES) {
            const bytes = await sandbox.files.read(path);
            return formatFile(entry.path, bytes, limits, { maxImageBytes: MAX_IMAGE_BYTES });
          }
          return readLargeFile(sandbox, entry.path, entry.size, limits);
        }),
    }),
    write_file: createTool({
      id: "write_file",
      description: descriptions.write_file,
      inputSchema: writeFileInput,
      outputSchema: kilnToolOutput,
      toModelOutput,
      execute: async ({ path, content }, context) =>
        inSandbox(context, async (sandbox) => {
          await sandbox.files.write(path, content);
          const bytes = Buffer.byteLength(content, "utf8");
          return { ok: true, text: `Wrote ${bytes} bytes to ${posix.resolve(WORKDIR, path)}.` };
        }),
    }),
    list_files: createTool({
      id: "list_files",
      description: descriptions.list_files,
      inputSchema: listFilesInput,
      outputSchema: kilnToolOutput,
      toModelOutput,
      execute: async ({ path }, context) =>
        inSandbox(context, async (sandbox) => {
          const target = path?.trim() ? path : WORKDIR;
          const entries = await sandbox.files.list(target);
          return listingOutput(posix.resolve(WORKDIR, target), entries, MAX_LIST_ENTRIES);
        }),
    }),
  };
  // A non-enumerable symbol key: Mastra never sees it as a tool, and the record stays
  // assignable to an Agent's `tools`.
  return Object.defineProperty(tools, Symbol.asyncDispose, {
    value: () => sandboxes[Symbol.asyncDispose](),
    enumerable: false,
  }) as typeof tools & { [Symbol.asyncDispose](): Promise<void> };
}

export type KilnTools = ReturnType<typeof createKilnTools>;

/** The idle limit the descriptions state; undefined when sandboxes are only released on dispose (0 or Infinity). */
function idleTimeoutOf(idleTimeoutMs: number | undefined): number | undefined {
  const ms = idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return ms > 0 && Number.isFinite(ms) ? ms : undefined;
}

/** The start of a file too large to read whole, as text; binary files are only described. */
async function readLargeFile(sandbox: Sandbox, path: string, size: number, limits: FormatOptions) {
  const head = await sandbox.exec(["head", "-c", String(limits.maxOutputChars * 4), path], { timeoutMs: 30_000 });
  const sample = head.stdout.slice(0, 8192);
  if (head.status !== "ok" || sample.includes("\0") || sample.includes("\uFFFD")) {
    return {
      ok: true,
      text: `${path} is a large binary file of ${size} bytes, not shown. Inspect it with run_code or run_command.`,
    };
  }
  const hint = "read further with run_command (e.g. `sed -n '200,400p' FILE` or `tail`) or load it with pandas";
  const shown = cutHead(head.stdout, limits.maxOutputChars, hint);
  const note = shown === head.stdout ? `\n[... cut: the file has ${size} bytes; ${hint}]` : "";
  return { ok: true, text: `${shown}${note}` };
}
