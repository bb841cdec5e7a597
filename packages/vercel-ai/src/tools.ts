/**
 * kilnTools(): the five sandbox tools as an AI SDK ToolSet, built with `tool()` from `ai`. Their
 * behaviour, texts, limits and sandbox binding are core's (`@kiln/core/tools`); this file only
 * wraps results as tool result parts (toModelOutput).
 */
import { type Kiln, KilnError, type Sandbox } from "@kiln/core";
import {
  bindTools,
  sandboxNameForConversation as coreSandboxNameForConversation,
  type KilnToolOutput,
  type KilnToolsSettings,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  type ToolBinding,
} from "@kiln/core/tools";
import { type Tool, tool } from "ai";
import { KEY_PREFIX } from "./defaults.ts";
import { toModelOutput } from "./model-output.ts";
import {
  inputSchemas,
  type ListFilesInput,
  type ReadFileInput,
  type RunCodeInput,
  type RunCommandInput,
  type WriteFileInput,
} from "./schemas.ts";

export type { KilnToolsSettings, KilnToolsWithKiln, KilnToolsWithSandbox };

/** `{ kiln, ... }` plus the AI SDK's conversation key. */
export interface KilnToolsWithKey extends KilnToolsWithKiln {
  /**
   * A conversation id. With it the sandbox is `kiln.getOrCreate(sandboxNameForConversation(key))`
   * ("ai-" + key when that is a valid name), so a conversation continues in the same sandbox from
   * any process; without it the tool set has a sandbox of its own.
   * @default none
   */
  key?: string;
}

/** `{ sandbox }` or `{ kiln, sandboxOptions?, key?, ... }`, plus the tools' settings. */
export type KilnToolsOptions = KilnToolsWithSandbox | KilnToolsWithKey;

/** @deprecated use KilnToolsWithSandbox (the same shape in every adapter). */
export type GivenSandbox = Pick<KilnToolsWithSandbox, "sandbox">;
/** @deprecated use KilnToolsWithKey (KilnToolsWithKiln plus `key`). */
export type LazySandbox = Omit<KilnToolsWithKey, keyof KilnToolsSettings>;
/** @deprecated use KilnToolsOptions. */
export type SandboxSource = GivenSandbox | LazySandbox;

export interface ReleaseOptions {
  /** Delete a keyed sandbox instead of stopping it (the conversation is over). @default false */
  delete?: boolean;
}

/**
 * The sandbox name of a conversation key: `"ai-" + key` when that is a valid sandbox name, else a
 * readable slug of the key plus a 16-hex hash of it, so two keys never share a sandbox. The same
 * helper, with the same name, in every adapter.
 */
export function sandboxNameForConversation(key: string, namePrefix: string = KEY_PREFIX): string {
  return coreSandboxNameForConversation(key, namePrefix);
}

/** @deprecated use sandboxNameForConversation (the same function; one name across the adapters). */
export function sandboxNameForKey(key: string): string {
  return sandboxNameForConversation(key);
}

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
  tools: ToolBinding;
  conversation: string | undefined;
  release(options?: ReleaseOptions): Promise<void>;
}

const bindings = new WeakMap<object, Binding>();

function bind(options: KilnToolsOptions): Binding {
  if (!options || typeof options !== "object" || (!options.sandbox && !options.kiln))
    throw new TypeError("kilnTools: pass { sandbox } or { kiln, sandboxOptions?, key? }");
  const tools = bindTools(options, {
    name: "vercel-ai",
    namePrefix: KEY_PREFIX,
    extraKeys: ["key"],
    // The label earlier releases put on their sandboxes; kept so `kiln.list({ labels: { adapter } })` still finds them.
    labels: { adapter: "vercel-ai" },
  });
  const key = options.kiln ? options.key : undefined;
  const name = tools.nameFor(key); // an invalid key fails here, not on the first tool call
  const kiln: Kiln | undefined = options.kiln;
  return {
    tools,
    conversation: key,
    async release(release = {}) {
      await tools.close();
      if (!kiln || key === undefined || !release.delete || name === undefined) return;
      try {
        await (await kiln.get(name)).delete();
      } catch (err) {
        if (!(KilnError.isInstance(err) && err.code === "SANDBOX_NOT_FOUND")) throw err;
      }
    },
  };
}

/**
 * The five Kiln tools for the AI SDK: run_code, run_command, read_file, write_file, list_files.
 *
 * With `{ sandbox }` they use that sandbox. With `{ kiln }` they make one on the first call:
 * their own (deleted on dispose), or with `key` the conversation's sandbox
 * `kiln.getOrCreate(sandboxNameForConversation(key))` (stopped on dispose, so the conversation can
 * continue later, in this or another process).
 */
export function kilnTools(options: KilnToolsOptions): KilnToolSet {
  const binding = bind(options);
  const { tools: bound, conversation } = binding;
  const d = bound.descriptions;
  const output = async (result: Promise<KilnToolOutput>): Promise<KilnToolOutput> => {
    const { text, images } = await result;
    return { text, images };
  };
  const textOf = async (result: Promise<KilnToolOutput>): Promise<string> => (await result).text;

  const tools = {
    run_code: tool({
      description: d.run_code,
      inputSchema: inputSchemas.run_code,
      execute: (input, { abortSignal }) => output(bound.run("run_code", input, conversation, abortSignal)),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    run_command: tool({
      description: d.run_command,
      inputSchema: inputSchemas.run_command,
      execute: (input, { abortSignal }) => textOf(bound.run("run_command", input, conversation, abortSignal)),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    read_file: tool({
      description: d.read_file,
      inputSchema: inputSchemas.read_file,
      execute: (input, { abortSignal }) => output(bound.run("read_file", input, conversation, abortSignal)),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    write_file: tool({
      description: d.write_file,
      inputSchema: inputSchemas.write_file,
      execute: (input, { abortSignal }) => textOf(bound.run("write_file", input, conversation, abortSignal)),
      toModelOutput: ({ output }) => toModelOutput(output),
    }),
    list_files: tool({
      description: d.list_files,
      inputSchema: inputSchemas.list_files,
      execute: (input, { abortSignal }) => textOf(bound.run("list_files", input, conversation, abortSignal)),
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

/**
 * The tool set's sandbox (made now if no tool has run yet), e.g. to download what the model made.
 * Returns a Promise: `const sandbox = await getKilnSandbox(tools)`.
 */
export function getKilnSandbox(tools: KilnToolSet): Promise<Sandbox> {
  const binding = bindingOf(tools);
  return binding.tools.use(binding.conversation, async (sandbox) => sandbox);
}
