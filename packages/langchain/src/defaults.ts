/**
 * The adapter's own defaults. The tools' shared defaults (time limit, output size, read and
 * image limits, idle timeout, labels) are core's (`@kiln/core/tools`).
 */
import { ADAPTER_LABEL_KEY } from "@kiln/core/tools";

/** Prefix of the sandbox names derived from LangGraph thread ids. */
export const DEFAULT_NAME_PREFIX = "lc-";

/** Labels on every sandbox the `{ kiln }` tools create, so `kiln.list({ labels })` finds them. */
export const ADAPTER_LABEL = { [ADAPTER_LABEL_KEY]: "langchain" } as const;
