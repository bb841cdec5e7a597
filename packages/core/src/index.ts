export {
  ConversationSandboxes,
  type ConversationSandboxesOptions,
  DEFAULT_IDLE_TIMEOUT_MS,
  RESTARTED_NOTES,
  type ReleaseMode,
  type UseInfo,
} from "./conversations/conversation-sandboxes.ts";
export { checkNamePrefix, sandboxNameFor } from "./conversations/sandbox-names.ts";
export type * from "./engine/engine.ts";
export {
  AbortedError,
  AgentUnavailableError,
  ConflictError,
  EngineError,
  EngineUnavailableError,
  FileNotFoundError,
  ForbiddenError,
  ImageBuildError,
  InternalServerError,
  InvalidArgumentError,
  KilnError,
  type KilnErrorCode,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  QuotaExceededError,
  RateLimitedError,
  SandboxFileError,
  SandboxNotFoundError,
  SandboxNotRunningError,
  ServerUnavailableError,
  SnapshotNotFoundError,
  UnauthorizedError,
  VolumeNotFoundError,
} from "./errors.ts";
export type { EnsureOptions } from "./images/runtime-image.ts";
export { Kiln } from "./kiln.ts";
export { NETWORK_PRESETS, type NetworkPolicy } from "./network/policy.ts";
export type { SandboxFiles } from "./sandbox/files.ts";
export { Sandbox } from "./sandbox/sandbox.ts";
export { declaredNetwork, describeTools, INPUT_DESCRIPTIONS, type Limits } from "./tools/descriptions.ts";
export {
  clip,
  type FormatOptions,
  formatCommand,
  formatExecution,
  formatListing,
  type ImageMediaType,
  type KilnToolOutput,
  type ToolImage,
} from "./tools/format.ts";
export {
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  HEAD_SHARE,
  MAX_IMAGES_PER_CALL,
  MAX_LIST_ENTRIES,
} from "./tools/tool-defaults.ts";
export type {
  CommandResult,
  CreateSandboxOptions,
  ExecOptions,
  Execution,
  ExecutionError,
  FileEntry,
  ImageProgressEvent,
  KilnOptions,
  Language,
  NetworkDecision,
  Result,
  RunCodeOptions,
  RunStatus,
  SandboxInfo,
  SandboxResources,
  SandboxState,
  SnapshotInfo,
  VolumeAttachment,
  VolumeInfo,
} from "./types.ts";
