/**
 * Which sandbox a tool call runs in: core's tool binding (`@kiln/core/tools`), the same in every
 * adapter. `{ sandbox }`: always that one, owned by the caller. `{ kiln }`: one per Mastra thread
 * (or resource, when a call has no thread), made lazily, released when idle or on dispose.
 */
import {
  sandboxNameForConversation as coreSandboxNameForConversation,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
} from "@kiln/core/tools";
import { SANDBOX_NAME_PREFIX } from "../defaults.ts";

/** @deprecated use KilnToolsWithSandbox (the same shape in every adapter). */
export type FixedSandboxBinding = Pick<KilnToolsWithSandbox, "sandbox">;
/** @deprecated use KilnToolsWithKiln (the same shape in every adapter). */
export type PerConversationBinding = Omit<KilnToolsWithKiln, "timeoutMs" | "maxOutputChars">;
/** @deprecated use KilnToolsOptions. */
export type SandboxBinding = FixedSandboxBinding | PerConversationBinding;

/** The ids Mastra gives a tool call: `context.agent.threadId` / `resourceId`. */
export interface ConversationIds {
  threadId?: string | undefined;
  resourceId?: string | undefined;
}

/**
 * The Kiln name of the sandbox for a Mastra thread, resource or workspace id: `mastra-<id>`, or a
 * slug plus a hash. The same helper, with the same name, in every adapter.
 */
export function sandboxNameForConversation(id: string, namePrefix: string = SANDBOX_NAME_PREFIX): string {
  return coreSandboxNameForConversation(id, namePrefix);
}

/** @deprecated use sandboxNameForConversation (it shadowed core's sandboxNameFor(prefix, id)). */
export function sandboxNameFor(id: string): string {
  return sandboxNameForConversation(id);
}
