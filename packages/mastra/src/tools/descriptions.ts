/**
 * What the model reads about the five tools: @kiln/core's descriptions, plus the one thing only
 * this adapter knows, that a conversation's idle sandbox is paused and loses its variables.
 */
import { describeTools as describeCoreTools, type Limits } from "@kiln/core";

export interface DescribedLimits extends Limits {
  /** When the tools stop idle sandboxes; undefined for a sandbox passed in, or one only released on dispose. */
  idleTimeoutMs?: number | undefined;
}

function minutes(ms: number): string {
  const value = Math.round(ms / 6_000) / 10;
  return value >= 1 ? `${value} minute${value === 1 ? "" : "s"}` : `${Math.round(ms / 100) / 10} s`;
}

export function describeTools(
  limits: DescribedLimits,
): Record<"run_code" | "run_command" | "read_file" | "write_file" | "list_files", string> {
  const tools = describeCoreTools(limits);
  const { idleTimeoutMs } = limits;
  if (idleTimeoutMs === undefined || !Number.isFinite(idleTimeoutMs)) return tools;
  const idle = ` After ${minutes(idleTimeoutMs)} without calls the sandbox is paused: files stay, but variables are lost.`;
  return { ...tools, run_code: tools.run_code + idle, run_command: tools.run_command + idle };
}
