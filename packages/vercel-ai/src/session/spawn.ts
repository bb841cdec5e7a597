/**
 * SandboxSession.spawn on top of core's `exec`.
 *
 * Core's exec streams stdout/stderr through callbacks, is killed through an AbortSignal and takes
 * a live stdin as an async iterable: everything a process handle needs but a pid, which core does
 * not report. For that alone the command runs behind a one-line wrapper that prints a marker line
 * with its pid on stderr and then `exec`s the command, which keeps that pid. The host strips the
 * line and resolves spawn() with the pid (the interface has `pid`, and callers signal it).
 */
import type { ExecOptions, Sandbox } from "@kiln/core";
import type { Experimental_SandboxProcess as SandboxProcess } from "ai";

export type WritableSandboxProcess = SandboxProcess & { readonly stdin: WritableStream<Uint8Array> };

const MARKER = "\u001ekiln-spawn ";

/** $1 = the command. */
const WRAPPER = `printf '\\036kiln-spawn %s\\n' "$$" >&2; exec /bin/sh -c "$1"`;

export interface SpawnRequest {
  command: string;
  cwd?: string;
  env?: Record<string, string>;
  stdin: boolean;
  timeoutMs: number;
  maxOutputBytes: number;
  abortSignal?: AbortSignal;
}

/** A readable byte stream fed by core's text callbacks. */
function textStream() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: () => {
      open = false;
    },
  });
  return {
    stream,
    push(text: string) {
      if (open && text !== "") controller.enqueue(encoder.encode(text));
    },
    close() {
      if (open) controller.close();
      open = false;
    },
  };
}

/**
 * The process's stdin, fed to core as a live stdin through a TransformStream: a write resolves
 * once core has taken the chunk, and core takes the next one only when the previous one is sent
 * (the sandbox stops reading while a few MiB wait for the command): that is the backpressure.
 * Close (or abort) ends core's iterable, and core closes the command's stdin: EOF. Once the
 * process has exited, writes (pending or new) reject and close has nothing left to do.
 */
function liveStdin() {
  const gone = () => new Error("the process has exited: its stdin is closed");
  let controller!: TransformStreamDefaultController<Uint8Array>;
  const pipe = new TransformStream<Uint8Array, Uint8Array>({
    start: (c) => {
      controller = c;
    },
  });
  const toCore = pipe.writable.getWriter();
  let exited = false;
  const end = async () => {
    if (!exited) await toCore.close();
  };
  return {
    chunks: pipe.readable,
    writable: new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (exited) throw gone();
        await toCore.write(chunk);
      },
      close: end,
      abort: end,
    }),
    exited() {
      exited = true;
      controller.error(gone());
    },
  };
}

export async function spawnProcess(
  sandbox: Sandbox,
  request: SpawnRequest,
): Promise<SandboxProcess | WritableSandboxProcess> {
  request.abortSignal?.throwIfAborted();
  const stdout = textStream();
  const stderr = textStream();
  const stdin = request.stdin ? liveStdin() : undefined;
  const killer = new AbortController();
  const signal = request.abortSignal ? AbortSignal.any([killer.signal, request.abortSignal]) : killer.signal;

  let resolvePid!: (pid: number | undefined) => void;
  const started = new Promise<number | undefined>((resolve) => {
    resolvePid = resolve;
  });
  // stderr is held back until its first line is complete: the wrapper's marker is taken out;
  // anything else (core's message for a command that could not start) is passed on as it is.
  let head: string | undefined = "";
  const endHead = () => {
    if (head === undefined) return;
    const newline = head.indexOf("\n");
    const marked = newline >= 0 && head.startsWith(MARKER);
    resolvePid(marked ? Number(head.slice(MARKER.length, newline)) : undefined);
    stderr.push(marked ? head.slice(newline + 1) : head);
    head = undefined;
  };
  const onStderr = (chunk: string) => {
    if (head === undefined) return stderr.push(chunk);
    head += chunk;
    if (head.includes("\n")) endHead();
  };

  const options: ExecOptions = {
    timeoutMs: request.timeoutMs,
    maxOutputBytes: request.maxOutputBytes,
    onStdout: stdout.push,
    onStderr,
    signal,
  };
  if (request.cwd !== undefined) options.cwd = request.cwd;
  if (request.env !== undefined) options.env = request.env;
  if (stdin) options.stdin = stdin.chunks;
  const finished = sandbox.exec(["/bin/sh", "-c", WRAPPER, "kiln-spawn", request.command], options).then(
    (result) => ({ exitCode: result.exitCode }),
    (err: unknown) => ({ error: err }),
  );
  void finished.then(() => {
    endHead();
    stdout.close();
    stderr.close();
    stdin?.exited();
  });

  const pid = await started;
  if (pid === undefined) {
    // No marker: the wrapper never ran (a missing working directory gives exit 127 and a
    // message, like a shell), or core could not run anything at all, which rejects spawn().
    const outcome = await finished;
    if ("error" in outcome) throw outcome.error;
  }

  const handle: SandboxProcess = {
    ...(pid === undefined ? {} : { pid }),
    stdout: stdout.stream,
    stderr: stderr.stream,
    async wait() {
      const outcome = await finished;
      if (request.abortSignal?.aborted) throw request.abortSignal.reason;
      if ("error" in outcome) throw outcome.error;
      return { exitCode: outcome.exitCode };
    },
    async kill() {
      killer.abort();
      await finished;
    },
  };
  return stdin ? { ...handle, stdin: stdin.writable } : handle;
}
