export { ADAPTER_LABEL, type ReleaseMode, THREAD_LABEL } from "./binding.ts";
export { sandboxNameForThread } from "./sandbox-name.ts";
export {
  createKilnTools,
  type KilnTools,
  type KilnToolsOptions,
  type KilnToolsWithKiln,
  type KilnToolsWithSandbox,
  threadIdOf,
} from "./tools.ts";
