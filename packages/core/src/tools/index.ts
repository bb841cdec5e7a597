/**
 * `@kiln/core/tools`: the five model-facing tools (run_code, run_command, read_file, write_file,
 * list_files) as one implementation every wrapper shares: the texts the model reads, the limits,
 * the behaviour (`runTool`) and the options/sandbox binding adapters build on.
 */
export {
  bindTools,
  type KilnToolsOptions,
  type KilnToolsSettings,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  sandboxNameForConversation,
  TOOL_OPTION_KEYS,
  type ToolBinding,
} from "./binding.ts";
export {
  declaredNetwork,
  describeTools,
  INPUT_DESCRIPTIONS,
  type Limits,
  languageInputDescription,
} from "./descriptions.ts";
export {
  clip,
  type FormatOptions,
  formatCommand,
  formatExecution,
  formatListing,
  formatSize,
  type ImageMediaType,
  type KilnToolOutput,
  type ToolImage,
} from "./format.ts";
export {
  cutHead,
  decodeText,
  type RunToolOptions,
  readFileForModel,
  resolveToolPath,
  runTool,
  sniffImage,
  TOOL_NAMES,
  type ToolInputs,
  type ToolLimits,
  type ToolName,
  type ToolResult,
  type ToolSandbox,
  toolErrorText,
  toolLimits,
  withRestartNote,
} from "./run-tool.ts";
export {
  ADAPTER_LABEL_KEY,
  DEFAULT_MAX_OUTPUT_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  HEAD_SHARE,
  MAX_IMAGE_BYTES,
  MAX_IMAGES_PER_CALL,
  MAX_LIST_ENTRIES,
  READ_BYTES_PER_CHAR,
} from "./tool-defaults.ts";
