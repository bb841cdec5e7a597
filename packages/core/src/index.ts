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
export type { BuildOptions, DockerfileImageSpec, ImageInfo, ImageSpec } from "./images/custom-images.ts";
export type { EnsureOptions } from "./images/runtime-image.ts";
export { Kiln } from "./kiln.ts";
export { NETWORK_PRESETS, type NetworkPolicy } from "./network/policy.ts";
export type { Previews } from "./preview/previews.ts";
export { PREVIEW_COOKIE, PREVIEW_HEADER } from "./preview/proxy.ts";
export type { DownloadOptions, ReadOptions, SandboxFiles } from "./sandbox/files.ts";
export type { SandboxProcesses } from "./sandbox/processes.ts";
export type { SandboxPty } from "./sandbox/pty.ts";
export { Sandbox } from "./sandbox/sandbox.ts";
export type { SweepReport } from "./sweeper.ts";
export type {
  CommandResult,
  CreateSandboxOptions,
  DockerClient,
  DockerConnectionOptions,
  ExecOptions,
  Execution,
  ExecutionError,
  FileEntry,
  ImageProgressEvent,
  KilnOptions,
  Language,
  NetworkDecision,
  PreviewUrl,
  PreviewUrlOptions,
  ProcessInfo,
  ProcessLogsOptions,
  ProcessStartOptions,
  Pty,
  PtyCreateOptions,
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
