/**
 * createKilnTools: the five sandbox tools as LangChain tools (`tool()` from @langchain/core).
 * Their behaviour, texts, limits and sandbox binding are core's (`@kiln/core/tools`); this file
 * only finds a call's conversation (LangGraph's thread id) and wraps results as ToolMessage content.
 */
import {
  bindTools,
  sandboxNameForConversation as coreSandboxNameForConversation,
  type KilnToolsOptions,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  type ToolName,
} from "@kiln/core/tools";
import { type StructuredTool, type ToolRunnableConfig, tool } from "@langchain/core/tools";
import { DEFAULT_NAME_PREFIX } from "./defaults.ts";
import { type ToolContent, toContent } from "./format.ts";
import { schemas } from "./schemas.ts";

export type { KilnToolsOptions, KilnToolsWithKiln, KilnToolsWithSandbox };

/** The five tools, in an array you pass to `createAgent({ tools })`, plus a way to release their sandboxes. */
export type KilnTools = StructuredTool[] & {
  /** Releases the sandboxes these tools opened (see `release`); the tools cannot be used after it. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/**
 * The stable sandbox name of a conversation (a LangGraph thread id): `namePrefix + id`, or a slug
 * plus a hash when that is not a valid name. The same helper, with the same name, in every adapter.
 */
export function sandboxNameForConversation(conversationId: string, namePrefix: string = DEFAULT_NAME_PREFIX): string {
  return coreSandboxNameForConversation(conversationId, namePrefix);
}

/** @deprecated use sandboxNameForConversation (the same function; one name across the adapters). */
export const sandboxNameForThread = sandboxNameForConversation;

/** The conversation a tool call belongs to: LangGraph's thread id, passed in the run config. */
export function threadIdOf(config: ToolRunnableConfig | undefined): string | undefined {
  const id: unknown = config?.configurable?.thread_id;
  return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
}

/**
 * The five Kiln tools for a LangChain agent: run_code, run_command, read_file, write_file and
 * list_files. Charts from run_code (and images read by read_file) reach the model as standard
 * image content blocks.
 *
 * @example
 * const tools = createKilnTools({ kiln: new Kiln() });
 * const agent = createAgent({ model, tools, checkpointer });
 * await agent.invoke({ messages }, { configurable: { thread_id: "chat-1" } });
 */
export function createKilnTools(options: KilnToolsOptions): KilnTools {
  const binding = bindTools(options, { name: "langchain", namePrefix: DEFAULT_NAME_PREFIX });
  const schema = schemas(binding.defaultLanguage);
  const make = <N extends ToolName>(name: N) =>
    tool(
      async (input, config: ToolRunnableConfig): Promise<ToolContent> =>
        toContent(await binding.run(name, input as never, threadIdOf(config), config.signal)),
      { name, description: binding.descriptions[name], schema: schema[name] },
    ) as unknown as StructuredTool;
  const tools: StructuredTool[] = [
    make("run_code"),
    make("run_command"),
    make("read_file"),
    make("write_file"),
    make("list_files"),
  ];
  const close = () => binding.close();
  return Object.assign(tools, { close, [Symbol.asyncDispose]: close });
}
