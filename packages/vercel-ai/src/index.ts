// Core's since the texts moved there; still exported here, as before.
export type { ImageMediaType, KilnToolOutput, ToolImage } from "@kiln/core/tools";
export type {
  ListFilesInput,
  ReadFileInput,
  RunCodeInput,
  RunCommandInput,
  WriteFileInput,
} from "./schemas.ts";
export {
  createSandboxSession,
  type KilnSandboxSession,
  type KilnSandboxSessionOptions,
} from "./session/sandbox-session.ts";
export {
  disposeKilnTools,
  type GivenSandbox,
  getKilnSandbox,
  type KilnToolSet,
  type KilnToolsOptions,
  type KilnToolsSettings,
  type KilnToolsWithKey,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  kilnTools,
  type LazySandbox,
  type ReleaseOptions,
  type SandboxSource,
  sandboxNameForConversation,
  sandboxNameForKey,
} from "./tools.ts";
