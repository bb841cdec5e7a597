/**
 * createKilnTools: the five sandbox tools as Mastra tools (createTool). Their behaviour, texts,
 * limits and sandbox binding are core's (`@kiln/core/tools`); this file only finds a call's
 * conversation (Mastra's thread or resource id) and wraps results for Mastra.
 */
import {
  bindTools,
  type KilnToolsOptions,
  type KilnToolsSettings,
  type ToolInputs,
  type ToolName,
  type ToolResult,
} from "@kiln/core/tools";
import { MASTRA_RESOURCE_ID_KEY, MASTRA_THREAD_ID_KEY } from "@mastra/core/request-context";
import { createTool } from "@mastra/core/tools";
import type { ConversationIds } from "../binding/sandbox-binding.ts";
import { SANDBOX_NAME_PREFIX } from "../defaults.ts";
import { toModelOutput } from "./format.ts";
import {
  type KilnToolOutput,
  kilnToolOutput,
  listFilesInput,
  readFileInput,
  runCodeInput,
  runCommandInput,
  writeFileInput,
} from "./schemas.ts";

export type { KilnToolsOptions };

/** @deprecated use KilnToolsSettings (the same shape in every adapter). */
export type KilnToolsLimits = KilnToolsSettings;

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

function toOutput({ ok, text, images }: ToolResult): KilnToolOutput {
  return { ok, text, ...(images.length ? { images } : {}) };
}

/**
 * The five tools, keyed by the names the model sees. With `{ kiln }` the tools own the sandboxes
 * they create: `await tools[Symbol.asyncDispose]()` (or `await using`) releases them.
 */
export function createKilnTools(options: KilnToolsOptions) {
  const binding = bindTools(options, { name: "mastra", namePrefix: SANDBOX_NAME_PREFIX });
  const d = binding.descriptions;
  const run = async <N extends ToolName>(name: N, input: ToolInputs[N], context: CallContext | undefined) => {
    const ids = conversationOf(context);
    // A thread's sandbox; the resource's when a call has no thread; else the tool set's own.
    return toOutput(await binding.run(name, input, ids.threadId || ids.resourceId || undefined, context?.abortSignal));
  };
  const common = { outputSchema: kilnToolOutput, toModelOutput };

  const tools = {
    run_code: createTool({
      id: "run_code",
      description: d.run_code,
      inputSchema: runCodeInput,
      ...common,
      execute: async (input, context) => run("run_code", input, context),
    }),
    run_command: createTool({
      id: "run_command",
      description: d.run_command,
      inputSchema: runCommandInput,
      ...common,
      execute: async (input, context) => run("run_command", input, context),
    }),
    read_file: createTool({
      id: "read_file",
      description: d.read_file,
      inputSchema: readFileInput,
      ...common,
      execute: async (input, context) => run("read_file", input, context),
    }),
    write_file: createTool({
      id: "write_file",
      description: d.write_file,
      inputSchema: writeFileInput,
      ...common,
      execute: async (input, context) => run("write_file", input, context),
    }),
    list_files: createTool({
      id: "list_files",
      description: d.list_files,
      inputSchema: listFilesInput,
      ...common,
      execute: async (input, context) => run("list_files", input, context),
    }),
  };
  // A non-enumerable symbol key: Mastra never sees it as a tool, and the record stays
  // assignable to an Agent's `tools`.
  return Object.defineProperty(tools, Symbol.asyncDispose, {
    value: () => binding.close(),
    enumerable: false,
  }) as typeof tools & { [Symbol.asyncDispose](): Promise<void> };
}

export type KilnTools = ReturnType<typeof createKilnTools>;
