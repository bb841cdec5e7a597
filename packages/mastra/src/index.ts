export type { KilnToolsSettings, KilnToolsWithKiln, KilnToolsWithSandbox } from "@kiln/core/tools";
export type {
  ConversationIds,
  FixedSandboxBinding,
  PerConversationBinding,
  SandboxBinding,
} from "./binding/sandbox-binding.ts";
export { sandboxNameFor, sandboxNameForConversation } from "./binding/sandbox-binding.ts";
export {
  createKilnTools,
  type KilnTools,
  type KilnToolsLimits,
  type KilnToolsOptions,
} from "./tools/create-kiln-tools.ts";
export { type DescribedLimits, describeTools } from "./tools/descriptions.ts";
export { type KilnImage, type KilnToolOutput, kilnToolOutput } from "./tools/schemas.ts";
export { KilnFilesystem, type KilnFilesystemOptions } from "./workspace/kiln-filesystem.ts";
export { KilnSandbox, type KilnSandboxOptions } from "./workspace/kiln-sandbox.ts";
export { KilnProcessHandle, KilnProcessManager } from "./workspace/process-manager.ts";
