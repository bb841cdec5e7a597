/**
 * The admission hook (design/server.md): with KILN_ADMISSION_URL set, the server POSTs
 * `{ action, orgId, keyId, sandboxId?, request }` before the actions of ADMISSION_ACTIONS and
 * honours `{ "allow": false, "reason" }` (403) or `{ "allow": true, "patch"? }` (create only:
 * options merged over the request). Fail closed: no answer within the timeout, a non-2xx answer
 * or an answer that is not such an object denies.
 */
import type { AuditAction } from "@kiln/core/vocabulary";

/** The actions the hook is asked about. */
export const ADMISSION_ACTIONS: ReadonlySet<string> = new Set<AuditAction>([
  "sandbox.create",
  "sandbox.exec",
  "sandbox.code",
  "pty.open",
  "network.update",
]);

export const DEFAULT_ADMISSION_TIMEOUT_MS = 2_000;

export interface AdmissionRequest {
  action: string;
  orgId: string;
  keyId: string;
  sandboxId?: string;
  request: unknown;
}

export type AdmissionDecision = { allow: true; patch?: Record<string, unknown> } | { allow: false; reason: string };

export class AdmissionHook {
  readonly url: string;
  readonly #timeoutMs: number;

  constructor(url: string, timeoutMs: number = DEFAULT_ADMISSION_TIMEOUT_MS) {
    this.url = url;
    this.#timeoutMs = timeoutMs;
  }

  async check(body: AdmissionRequest): Promise<AdmissionDecision> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        redirect: "error",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const timedOut = (err as Error).name === "TimeoutError";
      return {
        allow: false,
        reason: timedOut
          ? `The admission hook did not answer within ${this.#timeoutMs} ms`
          : "The admission hook could not be reached",
      };
    }
    let answer: unknown;
    try {
      answer = await res.json();
    } catch {
      answer = undefined;
    }
    if (
      !res.ok ||
      typeof answer !== "object" ||
      answer === null ||
      typeof (answer as { allow?: unknown }).allow !== "boolean"
    ) {
      return { allow: false, reason: `The admission hook gave no decision (HTTP ${res.status})` };
    }
    const a = answer as { allow: boolean; reason?: unknown; patch?: unknown };
    if (!a.allow) {
      return {
        allow: false,
        reason: typeof a.reason === "string" && a.reason !== "" ? a.reason : "Denied by the admission hook",
      };
    }
    const patch = a.patch;
    if (patch !== undefined && (typeof patch !== "object" || patch === null || Array.isArray(patch))) {
      return { allow: false, reason: "The admission hook answered a patch that is not an object" };
    }
    return patch === undefined ? { allow: true } : { allow: true, patch: patch as Record<string, unknown> };
  }
}
