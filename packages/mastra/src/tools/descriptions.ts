/**
 * What the model reads about the five tools: @kiln/core's descriptions (which now state the idle
 * timeout themselves).
 */
import type { Limits } from "@kiln/core/tools";

export { describeTools } from "@kiln/core/tools";

/** @deprecated use `Limits` from `@kiln/core/tools` (it has idleTimeoutMs now). */
export type DescribedLimits = Limits;
