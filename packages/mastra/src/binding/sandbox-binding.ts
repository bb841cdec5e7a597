/**
 * Which sandbox a tool call runs in. `{ sandbox }`: always that one, owned by the caller.
 * `{ kiln }`: one per Mastra thread (or resource, when a call has no thread), kept by core's
 * `ConversationSandboxes`: made lazily under a name derived from the id, released when idle or
 * on dispose, and reopened when it was stopped or deleted behind the tools' back.
 */
import {
  ConversationSandboxes,
  type CreateSandboxOptions,
  sandboxNameFor as coreSandboxNameFor,
  type Kiln,
  type Sandbox,
  type UseInfo,
} from "@kiln/core";
import { DEFAULT_IDLE_TIMEOUT_MS, SANDBOX_NAME_PREFIX } from "../defaults.ts";

/** Use this sandbox for every call. The caller owns it: the tools never stop or delete it. */
export interface FixedSandboxBinding {
  sandbox: Sandbox;
}

/** Make sandboxes on demand, one per conversation. */
export interface PerConversationBinding {
  kiln: Kiln;
  /** Options for each sandbox the tools create (`name` is derived from the thread). @default {} */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /**
   * Stop a conversation's sandbox after this long without a tool call; `0` or `Infinity` keeps it
   * until `[Symbol.asyncDispose]()`. Also the sandbox's `autoStopMs` unless `sandboxOptions` sets
   * one. @default 600_000 (10 minutes)
   */
  idleTimeoutMs?: number;
}

export type SandboxBinding = FixedSandboxBinding | PerConversationBinding;

/** The ids Mastra gives a tool call: `context.agent.threadId` / `resourceId`. */
export interface ConversationIds {
  threadId?: string | undefined;
  resourceId?: string | undefined;
}

/** The Kiln name of the sandbox for a Mastra thread, resource or workspace id: `mastra-<id>`, or a slug plus a hash. */
export function sandboxNameFor(id: string): string {
  return coreSandboxNameFor(SANDBOX_NAME_PREFIX, id);
}

export interface SandboxProvider extends AsyncDisposable {
  /** Runs `work` with the conversation's sandbox; the sandbox is not released while it runs. */
  use<T>(ids: ConversationIds, work: (sandbox: Sandbox, info: UseInfo) => Promise<T>): Promise<T>;
}

export function sandboxProvider(binding: SandboxBinding): SandboxProvider {
  if ("sandbox" in binding && binding.sandbox) {
    const sandbox = binding.sandbox;
    return { use: (_ids, work) => work(sandbox, {}), [Symbol.asyncDispose]: async () => {} };
  }
  if ("kiln" in binding && binding.kiln) {
    const sandboxes = new ConversationSandboxes({
      kiln: binding.kiln,
      namePrefix: SANDBOX_NAME_PREFIX,
      idleTimeoutMs: binding.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      ...(binding.sandboxOptions ? { sandboxOptions: binding.sandboxOptions } : {}),
    });
    return {
      // A thread's sandbox; the resource's when a call has no thread; else the tool set's own.
      use: (ids, work) => sandboxes.use(ids.threadId || ids.resourceId || undefined, work),
      [Symbol.asyncDispose]: () => sandboxes.close(),
    };
  }
  throw new TypeError("createKilnTools: pass either { sandbox } or { kiln, sandboxOptions? }");
}
