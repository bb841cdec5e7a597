/**
 * Sandbox.runCode: a notebook cell in a long-lived interpreter context inside the sandbox.
 * Variables persist between calls in the same context; the final expression's value comes
 * back as the main result; the user's code failing is data (Execution.error), never a throw.
 */
import type { AgentConnection } from "../agent/connection.ts";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_RESULT_BYTES,
  DEFAULT_RUN_CODE_TIMEOUT_MS,
  HOST_TIMEOUT_SLACK_MS,
} from "../defaults.ts";
import { InvalidArgumentError, throwIfAborted } from "../errors.ts";
import {
  type Execution,
  type ExecutionError,
  LANGUAGES,
  type Language,
  type Result,
  type RunStatus,
} from "../types.ts";
import {
  optionalFunction,
  optionalNumber,
  optionalObject,
  optionalOneOf,
  optionalSignal,
  requireName,
  requireString,
} from "../validate.ts";
import { OutputCollector } from "./output.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface ValidRunCode {
  code: string;
  language: Language;
  context: string;
  timeoutMs: number;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  onResult?: (result: Result) => void;
  signal?: AbortSignal;
}

export function validateRunCode(code: unknown, options: unknown, defaultLanguage: Language): ValidRunCode {
  const o = optionalObject("options", options);
  return {
    code: requireString("code", code, { allowEmpty: true }),
    language: optionalOneOf("options.language", o.language, LANGUAGES) ?? defaultLanguage,
    context: o.context === undefined ? "default" : requireName("options.context", o.context),
    timeoutMs: optionalNumber("options.timeoutMs", o.timeoutMs, { min: 1, max: DAY_MS }) ?? DEFAULT_RUN_CODE_TIMEOUT_MS,
    onStdout: optionalFunction("options.onStdout", o.onStdout),
    onStderr: optionalFunction("options.onStderr", o.onStderr),
    onResult: optionalFunction("options.onResult", o.onResult),
    signal: optionalSignal("options.signal", o.signal),
  };
}

export async function runCode(connection: AgentConnection, run: ValidRunCode): Promise<Execution> {
  throwIfAborted(run.signal, "runCode");
  const started = performance.now();
  const stdout = new OutputCollector(DEFAULT_MAX_OUTPUT_BYTES, run.onStdout);
  const stderr = new OutputCollector(DEFAULT_MAX_OUTPUT_BYTES, run.onStderr);
  const results: Result[] = [];
  // The agent drops results past DEFAULT_MAX_RESULT_BYTES; the host counts too, whatever it is sent.
  let resultBytes = 0;
  let resultsCut = false;
  let done:
    | {
        status: RunStatus;
        error?: ExecutionError;
        truncated: boolean;
        contextRestarted?: boolean;
        agentDurationMs?: number;
      }
    | undefined;

  const request = connection.request(
    {
      type: "run_code",
      language: run.language,
      context: run.context,
      code: run.code,
      timeoutMs: run.timeoutMs,
      maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
      maxResultBytes: DEFAULT_MAX_RESULT_BYTES,
    },
    (frame) => {
      const h = frame.header;
      if (h.type === "stdout") stdout.push(frame.body);
      else if (h.type === "stderr") stderr.push(frame.body);
      else if (h.type === "result") {
        // The header's JSON size is what the result costs in memory (frames are bounded to 1 MiB).
        resultBytes += JSON.stringify(h.result).length;
        if (resultBytes > DEFAULT_MAX_RESULT_BYTES) resultsCut = true;
        else {
          results.push(h.result as Result);
          run.onResult?.(h.result as Result);
        }
      } else if (h.type === "done") {
        done = {
          status: h.status as RunStatus,
          error: (h.error ?? undefined) as ExecutionError | undefined,
          truncated: Boolean(h.truncated),
          contextRestarted: h.contextRestarted === true,
          ...(typeof h.durationMs === "number" ? { agentDurationMs: h.durationMs } : {}),
        };
        return true;
      } else if (h.type === "error") {
        throw new InvalidArgumentError("code", String(h.message));
      }
      return false;
    },
    undefined,
    { deadlineMs: 0 }, // its own deadline: timeoutMs + HOST_TIMEOUT_SLACK_MS
  );

  const cancel = () => void connection.send({ type: "cancel", id: 0, target: request.id }).catch(() => {});
  run.signal?.addEventListener("abort", cancel, { once: true });
  let hostTimer: NodeJS.Timeout | undefined;
  const hostDeadline = new Promise<"late">((resolve) => {
    hostTimer = setTimeout(() => resolve("late"), run.timeoutMs + HOST_TIMEOUT_SLACK_MS);
  });

  try {
    const settled = await Promise.race([request.finished.then(() => "done" as const), hostDeadline]);
    if (settled === "late") {
      cancel();
      done = {
        status: "timeout",
        truncated: false,
        error: lost("TimeoutError", `The sandbox did not answer within ${run.timeoutMs} ms`),
      };
    }
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    done = { status: "killed", truncated: false, error: lost("SandboxUnavailable", (err as Error).message) };
  } finally {
    clearTimeout(hostTimer);
    run.signal?.removeEventListener("abort", cancel);
  }
  const outcome = done as NonNullable<typeof done>;
  return {
    results,
    stdout: stdout.text(),
    stderr: stderr.text(),
    ...(outcome.error ? { error: outcome.error } : {}),
    status: outcome.status,
    truncated: outcome.truncated || resultsCut || stdout.truncated || stderr.truncated,
    durationMs: Math.round(performance.now() - started),
    contextRestarted: outcome.contextRestarted ?? false,
    ...(outcome.agentDurationMs === undefined ? {} : { agentDurationMs: outcome.agentDurationMs }),
  };
}

function lost(name: string, value: string): ExecutionError {
  return { name, value, traceback: "" };
}
