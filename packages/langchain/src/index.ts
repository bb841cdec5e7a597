export type { ReleaseMode } from "@kiln/core";
export type { KilnToolsSettings } from "@kiln/core/tools";
export { ADAPTER_LABEL } from "./defaults.ts";
export {
  createKilnTools,
  type KilnTools,
  type KilnToolsOptions,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  sandboxNameForConversation,
  sandboxNameForThread,
  threadIdOf,
} from "./tools.ts";
