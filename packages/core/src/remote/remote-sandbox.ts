/**
 * A sandbox behind a Kiln server. It is a `Sandbox` (same class, same methods, `instanceof`
 * holds), built on a second path: every method goes to the server's routes instead of the
 * engine and the agent. A subclass rather than a branch in every method of sandbox.ts keeps
 * the in-process code free of remote cases; a method added to Sandbox later and not yet
 * mirrored here fails with NotSupportedError naming it (see `detachedServices`) instead of
 * touching this machine's engine.
 */
import { Readable } from "node:stream";
import {
  AbortedError,
  InvalidArgumentError,
  NotSupportedError,
  SandboxNotFoundError,
  throwIfAborted,
} from "../errors.ts";
import { type NetworkPolicy, validateNetwork } from "../network/policy.ts";
import { validateRunCode } from "../sandbox/code.ts";
import { validateExec } from "../sandbox/exec.ts";
import type { SandboxFiles } from "../sandbox/files.ts";
import type { SandboxProcesses } from "../sandbox/processes.ts";
import type { SandboxPty } from "../sandbox/pty.ts";
import type { SandboxRecord } from "../sandbox/records.ts";
import { Sandbox, type SandboxServices } from "../sandbox/sandbox.ts";
import type {
  CommandResult,
  ExecOptions,
  Execution,
  Language,
  NetworkDecision,
  PreviewUrl,
  PreviewUrlOptions,
  Result,
  RunCodeOptions,
  SandboxInfo,
  SnapshotInfo,
} from "../types.ts";
import { requireName } from "../validate.ts";
import { type StreamEvent, streamCall } from "./event-stream.ts";
import type { HttpClient } from "./http-client.ts";
import { RemoteFiles } from "./remote-files.ts";
import { RemoteProcesses, RemotePtys, remotePreviewUrl } from "./remote-terminals.ts";

/** SandboxInfo as a server answers it: with the sandbox's language (and network, resources). */
export type RemoteSandboxInfo = SandboxInfo & { language?: Language };

/** After an abort, how long exec and runCode wait for the server to report the call killed before they cut the stream. */
const CANCEL_WAIT_MS = 5_000;

/**
 * The longest call answered as one JSON body. A streamed answer sends its headers at once;
 * a JSON one only when the call has ended, and Node's fetch gives up on headers after 300 s.
 */
const JSON_ANSWER_MAX_MS = 240_000;

/**
 * A call needs no stream when nothing watches it as it runs (no output callbacks, no signal to
 * cancel it with) and its timeout ends it well before fetch's header timeout. A stream costs
 * both sides web streams, an SSE encoder and parser per call (issue 10: on a 2-core machine
 * about 1 ms of CPU per call); a JSON answer is one write.
 */
function jsonSuffices(valid: {
  onStdout?: unknown;
  onStderr?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs: number;
}): boolean {
  return (
    valid.onStdout === undefined &&
    valid.onStderr === undefined &&
    valid.signal === undefined &&
    valid.timeoutMs <= JSON_ANSWER_MAX_MS
  );
}

/** Stands in for the engine and agent a remote sandbox does not have: any use names what is missing. */
const detachedServices = new Proxy({} as SandboxServices, {
  get(_target, property) {
    throw new NotSupportedError(
      `This sandbox is behind a Kiln server, and the remote client does not offer this operation (${String(property)}) yet`,
    );
  },
});

export class RemoteSandbox extends Sandbox {
  override readonly files: SandboxFiles;
  override readonly pty: SandboxPty;
  override readonly processes: SandboxProcesses;
  readonly #client: HttpClient;
  /** `/v1/sandboxes/<id>` */
  readonly #path: string;
  #deleting?: Promise<void>;

  /** @internal Made by a remote Kiln from the server's SandboxInfo. */
  constructor(client: HttpClient, info: RemoteSandboxInfo) {
    const record: SandboxRecord = {
      ...(info.name === undefined ? {} : { name: info.name }),
      labels: info.labels ?? {},
      language: info.language ?? "python",
      createdAt: info.createdAt,
    };
    super(info.id, record, detachedServices);
    this.#client = client;
    this.#path = `/v1/sandboxes/${encodeURIComponent(info.id)}`;
    this.files = new RemoteFiles(client, info.id);
    this.pty = new RemotePtys(client, info.id);
    this.processes = new RemoteProcesses(client, info.id);
  }

  override info(): Promise<SandboxInfo> {
    return this.#client.json<SandboxInfo>("GET", this.#path, { context: this.#context, what: "info" });
  }

  get #context() {
    return { sandbox: this.id };
  }

  override async exec(command: string | string[], options?: ExecOptions): Promise<CommandResult> {
    // The same argument checks as in-process, before any request.
    const valid = validateExec(command, options);
    throwIfAborted(valid.signal, "exec");
    const o = options ?? {};
    // Text goes in the request; a live stdin (or bytes that are not UTF-8) streams beside it.
    const text = o.stdin === undefined ? undefined : stdinText(o.stdin);
    const live = valid.stdin !== undefined && text === undefined ? valid.stdin : undefined;
    const body = {
      command,
      ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
      ...(o.env === undefined ? {} : { env: o.env }),
      ...(text === undefined ? {} : { stdin: text }),
      ...(live === undefined ? {} : { stdinStream: true }),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
      ...(o.maxOutputBytes === undefined ? {} : { maxOutputBytes: o.maxOutputBytes }),
    };
    // Nothing to stream (no callbacks, no signal, no live stdin) and an answer that comes in time:
    // one JSON answer, which costs both sides less than a stream (see jsonSuffices).
    if (live === undefined && jsonSuffices(valid)) {
      return this.#client.json<CommandResult>("POST", `${this.#path}/exec`, {
        json: body,
        context: this.#context,
        what: "exec",
      });
    }
    const started = performance.now();
    let stdout = "";
    let stderr = "";
    const feeding = new AbortController();
    try {
      return await this.#cancellable<CommandResult>(
        "exec",
        body,
        live === undefined && valid.signal !== undefined,
        valid.signal,
        (event) => {
          if (event.type === "started" && typeof event.execId === "string") {
            if (live !== undefined) this.#sendStdin(event.execId, live, feeding.signal);
            return undefined;
          }
          if (event.type === "stdout" || event.type === "stderr") {
            const data = String(event.data ?? "");
            if (event.type === "stdout") {
              stdout = capped(stdout, data, valid.maxOutputBytes);
              valid.onStdout?.(data);
            } else {
              stderr = capped(stderr, data, valid.maxOutputBytes);
              valid.onStderr?.(data);
            }
            return undefined;
          }
          return event.type === "result" ? (event.result as CommandResult) : undefined;
        },
      );
    } catch (err) {
      // Cut off mid-command (the server did not confirm the cancel in time): like in-process, a
      // result with status "killed" (the server sees the connection close and kills the command), not a throw.
      if (!(err instanceof AbortedError) || !valid.signal?.aborted) throw err;
      return {
        exitCode: 137,
        stdout,
        stderr,
        status: "killed",
        truncated: false,
        durationMs: Math.round(performance.now() - started),
      };
    } finally {
      // The command has ended: a stdin still being read is not needed any more.
      feeding.abort();
    }
  }

  /**
   * One exec or code stream (`route`: "exec" | "code"). With `cancellable`, the body asks the
   * server to name the call (its `started` event); an abort of `signal` then asks the server
   * to cancel it (`POST …/exec/{execId}/cancel`) and waits for the final event on the stream,
   * as in-process waits for the agent (the code has stopped when the call returns). A server
   * that does not answer within CANCEL_WAIT_MS, or a call not started yet, is cut off instead
   * (the server then sees the connection close and cancels it too): the caller sees an
   * AbortedError. A server from before `cancellable` refuses the field: the call is made again
   * without it, and an abort only cuts.
   */
  async #cancellable<T>(
    route: "exec" | "code",
    body: Record<string, unknown>,
    cancellable: boolean,
    signal: AbortSignal | undefined,
    onEvent: (event: StreamEvent) => T | undefined,
  ): Promise<T> {
    const what = route === "exec" ? "exec" : "runCode";
    const stream = new AbortController();
    let execId: string | undefined;
    let cutOff: NodeJS.Timeout | undefined;
    const cut = () => stream.abort(signal?.reason);
    const onAbort = () => {
      if (execId === undefined) return cut();
      cutOff = setTimeout(cut, CANCEL_WAIT_MS);
      this.#client
        .empty("POST", `${this.#path}/exec/${encodeURIComponent(execId)}/cancel`, {
          context: this.#context,
          what: `${what}.cancel`,
        })
        .catch(cut);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const call = (json: Record<string, unknown>) =>
      streamCall<T>(
        this.#client,
        `${this.#path}/${route}`,
        json,
        { signal: stream.signal, context: this.#context, what },
        (event) => {
          if (event.type === "started" && typeof event.execId === "string") execId = event.execId;
          return onEvent(event);
        },
      );
    try {
      if (!cancellable) return await call(body);
      try {
        return await call({ ...body, cancellable: true });
      } catch (err) {
        if (!(err instanceof InvalidArgumentError && err.field === "cancellable")) throw err;
        return await call(body);
      }
    } finally {
      clearTimeout(cutOff);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Streams a live stdin as the body of `POST …/exec/{execId}/stdin` while the exec stream runs.
   * Its outcome is not the caller's: as in-process, the command's result says what happened
   * (a stdin cut short reads as EOF).
   */
  #sendStdin(execId: string, source: Uint8Array | AsyncIterable<Uint8Array | string>, signal: AbortSignal): void {
    const encoder = new TextEncoder();
    const chunks = async function* () {
      if (source instanceof Uint8Array) {
        yield source;
        return;
      }
      for await (const chunk of source) {
        if (signal.aborted) return;
        yield typeof chunk === "string" ? encoder.encode(chunk) : chunk;
      }
    };
    // Through node:http, read only as fast as the server takes it (fetch would read ahead).
    this.#client
      .postStream(
        `${this.#path}/exec/${encodeURIComponent(execId)}/stdin`,
        Readable.from(chunks(), { objectMode: false }),
        {
          signal,
          context: this.#context,
          what: "exec.stdin",
        },
      )
      .catch(() => {});
  }

  override async runCode(code: string, options?: RunCodeOptions): Promise<Execution> {
    const valid = validateRunCode(code, options, this.language);
    throwIfAborted(valid.signal, "runCode");
    const o = options ?? {};
    const body = {
      code,
      ...(o.language === undefined ? {} : { language: o.language }),
      ...(o.context === undefined ? {} : { context: o.context }),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
    };
    if (valid.onResult === undefined && jsonSuffices(valid)) {
      return this.#client.json<Execution>("POST", `${this.#path}/code`, {
        json: body,
        context: this.#context,
        what: "runCode",
      });
    }
    const started = performance.now();
    let stdout = "";
    let stderr = "";
    const results: Result[] = [];
    try {
      return await this.#cancellable<Execution>(
        "code",
        body,
        valid.signal !== undefined,
        valid.signal,
        (event: StreamEvent) => {
          if (event.type === "stdout") {
            stdout += String(event.data ?? "");
            valid.onStdout?.(String(event.data ?? ""));
          } else if (event.type === "stderr") {
            stderr += String(event.data ?? "");
            valid.onStderr?.(String(event.data ?? ""));
          } else if (event.type === "display") {
            results.push(event.result as Result);
            valid.onResult?.(event.result as Result);
          } else if (event.type === "execution") return event.execution as Execution;
          return undefined;
        },
      );
    } catch (err) {
      if (!(err instanceof AbortedError) || !valid.signal?.aborted) throw err;
      return {
        results,
        stdout,
        stderr,
        error: { name: "Cancelled", value: "execution was cancelled (aborted by the caller)", traceback: "" },
        status: "killed",
        truncated: false,
        durationMs: Math.round(performance.now() - started),
      };
    }
  }

  override previewUrl(port: number, options?: PreviewUrlOptions): Promise<PreviewUrl> {
    return remotePreviewUrl(this.#client, this.id, port, options);
  }

  override snapshot(name: string): Promise<SnapshotInfo> {
    const valid = requireName("name", name);
    return this.#client.json<SnapshotInfo>("POST", `${this.#path}/snapshots`, {
      json: { name: valid },
      context: { ...this.#context, name: valid },
      what: "snapshot",
    });
  }

  /** `PUT …/network`: the server validates and applies it (next connection). */
  override async setNetwork(policy: NetworkPolicy): Promise<void> {
    validateNetwork("network", policy); // the same checks as in-process, before any request
    await this.#client.json<SandboxInfo>("PUT", `${this.#path}/network`, {
      json: { network: policy },
      context: this.#context,
      what: "setNetwork",
    });
  }

  override async networkLog(): Promise<NetworkDecision[]> {
    const answer = await this.#client.json<{ events: NetworkDecision[] }>("GET", `${this.#path}/network/log`, {
      context: this.#context,
      what: "networkLog",
    });
    return answer.events;
  }

  /** Stops the sandbox, keeping its filesystem. Idempotent. */
  override async stop(): Promise<void> {
    await this.#client.empty("POST", `${this.#path}/stop`, { context: this.#context, what: "stop" });
  }

  /** Starts a stopped sandbox; the server answers once its agent answers. Idempotent. */
  override async start(): Promise<void> {
    await this.#client.empty("POST", `${this.#path}/start`, { context: this.#context, what: "start" });
  }

  /**
   * Deletes the sandbox. Calling it again on this handle is a no-op; a sandbox already deleted
   * elsewhere gives SandboxNotFoundError.
   */
  override delete(): Promise<void> {
    this.#deleting ??= this.#client.empty("DELETE", this.#path, { context: this.#context, what: "delete" });
    return this.#deleting;
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (err) {
      if (!(err instanceof SandboxNotFoundError)) throw err;
    }
  }
}

/** Keeps at most about `max` bytes of a stream's text (the server cuts and reports; this is for an aborted call). */
function capped(current: string, more: string, max: number): string {
  return current.length >= max ? current : current + more;
}

/**
 * stdin that is text (a string, or UTF-8 bytes) travels in the request's JSON; undefined for a
 * live stdin (an async iterable, fed while the command runs) and for bytes that are not UTF-8,
 * which stream as the body of the exec's stdin route instead.
 */
function stdinText(stdin: NonNullable<ExecOptions["stdin"]>): string | undefined {
  if (typeof stdin === "string") return stdin;
  if (!(stdin instanceof Uint8Array)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(stdin);
  } catch {
    return undefined;
  }
}
