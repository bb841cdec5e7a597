/**
 * The options every adapter's tools take, and the one place that turns them into a sandbox per
 * call: `{ sandbox }` (the caller's, never stopped or deleted by the tools) or `{ kiln, ... }`
 * (core's ConversationSandboxes: one sandbox per conversation, made lazily, released when idle).
 * Same names and defaults in LangChain, the AI SDK and Mastra; each adapter only says where a
 * call's conversation id comes from and wraps the result for its framework.
 */
import {
  ConversationSandboxes,
  DEFAULT_IDLE_TIMEOUT_MS,
  type ReleaseMode,
  type UseInfo,
} from "../conversations/conversation-sandboxes.ts";
import { checkNamePrefix, sandboxNameFor } from "../conversations/sandbox-names.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Kiln } from "../kiln.ts";
import type { Sandbox } from "../sandbox/sandbox.ts";
import type { CreateSandboxOptions, Language } from "../types.ts";
import { checkKnownKeys, isRecord } from "../validate.ts";
import { declaredNetwork, describeTools } from "./descriptions.ts";
import { runTool, type ToolInputs, type ToolName, type ToolResult, toolLimits } from "./run-tool.ts";
import { ADAPTER_LABEL_KEY } from "./tool-defaults.ts";

/** Limits of every tool call, told to the model in the tools' descriptions. */
export interface KilnToolsSettings {
  /** Time limit of each run_code and run_command call. @default 60_000 */
  timeoutMs?: number;
  /** Characters kept per stream (stdout, stderr, traceback, file text) in what the model reads. @default 12_000 */
  maxOutputChars?: number;
}

/** Use this sandbox for every call. You own it: the tools never stop or delete it. */
export interface KilnToolsWithSandbox extends KilnToolsSettings {
  sandbox: Sandbox;
  kiln?: never;
  sandboxOptions?: never;
}

/** Make sandboxes on demand with this Kiln: one per conversation (thread), on its first tool call. */
export interface KilnToolsWithKiln extends KilnToolsSettings {
  kiln: Kiln;
  sandbox?: never;
  /**
   * Options of the sandboxes made (`name` comes from the conversation). Their labels gain
   * `kiln-adapter: "<adapter>"`. @default {}
   */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Release a conversation's sandbox after this long without a tool call; 0 or Infinity: only on
   * close. Also the sandboxes' `autoStopMs` (unless sandboxOptions sets one), which holds if this
   * process dies. @default 900_000 (15 min, core's DEFAULT_IDLE_TIMEOUT_MS)
   */
  idleTimeoutMs?: number;
  /**
   * How a conversation's sandbox is released when idle or on close: "stop" keeps its files so the
   * conversation can resume (even in another process), "delete" removes it. The tool set's own
   * sandbox (calls without a conversation) is stopped when idle and deleted on close. @default "stop"
   */
  release?: ReleaseMode;
  /** Sandbox names are `namePrefix + conversation id` (hashed when not a valid name). @default the adapter's ("lc-", "ai-", "mastra-") */
  namePrefix?: string;
}

export type KilnToolsOptions = KilnToolsWithSandbox | KilnToolsWithKiln;

/** Option names every adapter accepts; an adapter adds its own (the AI SDK's `key`). */
export const TOOL_OPTION_KEYS = [
  "sandbox",
  "kiln",
  "sandboxOptions",
  "idleTimeoutMs",
  "release",
  "namePrefix",
  "timeoutMs",
  "maxOutputChars",
] as const;

export interface ToolBinding {
  readonly limits: ReturnType<typeof toolLimits>;
  /** What the model reads about each tool, with this tool set's limits, language and network. */
  readonly descriptions: ReturnType<typeof describeTools>;
  /** The language run_code uses when the model gives none. */
  readonly defaultLanguage: Language;
  /** The sandbox name of a conversation (undefined: the tool set's own sandbox). */
  nameFor(conversationId: string | undefined): string | undefined;
  /** Runs `work` in the conversation's sandbox (undefined: the tool set's own). */
  use<T>(conversationId: string | undefined, work: (sandbox: Sandbox, info: UseInfo) => Promise<T>): Promise<T>;
  /** One tool call in the conversation's sandbox: core's runTool, with the restarted note. */
  run<N extends ToolName>(
    name: N,
    input: ToolInputs[N],
    conversationId: string | undefined,
    signal?: AbortSignal,
  ): Promise<ToolResult>;
  /** Releases the sandboxes this tool set made (see `release`); a given sandbox is left alone. Idempotent. */
  close(): Promise<void>;
}

/** The stable sandbox name of a conversation: core's `sandboxNameFor(namePrefix, id)`. */
export function sandboxNameForConversation(conversationId: string, namePrefix: string): string {
  return sandboxNameFor(checkNamePrefix(namePrefix), conversationId);
}

/**
 * Checks an adapter's options and binds them to sandboxes. `adapter` names the adapter (the
 * label value and error messages), `namePrefix` is its default prefix, `extraKeys` its own options.
 */
export function bindTools(
  options: KilnToolsOptions,
  adapter: { name: string; namePrefix: string; extraKeys?: readonly string[]; labels?: Record<string, string> },
): ToolBinding {
  if (!isRecord(options)) {
    throw new InvalidArgumentError("options", "pass { sandbox } or { kiln, sandboxOptions? }");
  }
  checkKnownKeys("options", options, [...TOOL_OPTION_KEYS, ...(adapter.extraKeys ?? [])]);
  const limits = toolLimits(options);
  if (options.sandbox) {
    if (options.kiln) throw new InvalidArgumentError("options", "pass either sandbox or kiln, not both");
    const given = options.sandbox;
    const defaultLanguage = given.language ?? "python";
    return {
      limits,
      defaultLanguage,
      descriptions: describeTools({ ...limits, defaultLanguage }),
      nameFor: () => given.name,
      use: (_id, work) => work(given, {}),
      run: (name, input, _id, signal) => runTool(name, input, given, limits, { signal }),
      close: async () => {},
    };
  }
  if (!options.kiln) throw new InvalidArgumentError("options", "pass { sandbox } or { kiln, sandboxOptions? }");
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const sandboxes = new ConversationSandboxes({
    kiln: options.kiln,
    namePrefix: options.namePrefix ?? adapter.namePrefix,
    sandboxOptions: {
      ...options.sandboxOptions,
      labels: { ...adapter.labels, ...options.sandboxOptions?.labels, [ADAPTER_LABEL_KEY]: adapter.name },
    },
    idleTimeoutMs,
    ...(options.release === undefined ? {} : { release: options.release }),
  });
  const defaultLanguage = options.sandboxOptions?.language ?? "python";
  return {
    limits,
    defaultLanguage,
    descriptions: describeTools({
      ...limits,
      defaultLanguage,
      network: declaredNetwork(options.sandboxOptions),
      idleTimeoutMs: idleTimeoutMs === Infinity ? undefined : idleTimeoutMs,
    }),
    nameFor: (id) => sandboxes.nameFor(id),
    use: (id, work) => sandboxes.use(id, work),
    run: (name, input, id, signal) =>
      sandboxes.use(id, (sandbox, { restarted }) => runTool(name, input, sandbox, limits, { signal, restarted })),
    close: () => sandboxes.close(),
  };
}
