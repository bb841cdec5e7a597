export type { ReleaseMode } from "@kiln/core";
export { ADAPTER_LABEL } from "./defaults.ts";
export {
  createKilnTools,
  type KilnTools,
  type KilnToolsOptions,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  sandboxNameForThread,
  threadIdOf,
} from "./tools.ts";
