/**
 * SandboxSession.spawn on top of core's `exec`.
 *
 * Core's exec streams stdout/stderr through callbacks and is killed through an AbortSignal,
 * which maps onto a process handle directly. What it lacks is live stdin: `ExecOptions.stdin`
 * takes all the bytes up front. So a spawned process runs inside a small wrapper script:
 *
 *   - with `stdin: true` the wrapper makes a FIFO, opens it read-write (which never blocks),
 *     opens the command's stdin on it, unlinks it, and leaves a `sleep infinity` holding the
 *     write end. The host writes each chunk with a separate `exec` of
 *     `dd of=/proc/<holder>/fd/1` (the holder's copy of the write end; the FIFO has no name
 *     any more, so nothing is left behind), and closing stdin kills the holder: once the
 *     command has read what was written it sees EOF, exactly like a closed pipe;
 *   - either way the wrapper first prints one marker line on stderr with its pid (the
 *     command's, after `exec`) and the holder's pid. The host strips that line, resolves
 *     spawn() with the pid, and only then lets stdin writes start.
 *
 * Everything the wrapper starts is in the exec's process group, which core kills when the
 * command ends or is cancelled, so no holder outlives its command.
 */
import type { ExecOptions, Sandbox } from "@kiln/core";
import type { Experimental_SandboxProcess as SandboxProcess } from "ai";

export type WritableSandboxProcess = SandboxProcess & { readonly stdin: WritableStream<Uint8Array> };

const MARKER = "\u001ekiln-spawn ";

/** $1 = the command, $2 = "1" for a live stdin. Exit 125 when the stdin pipe cannot be made. */
const WRAPPER = `
if [ "$2" = 1 ]; then
  d=$(mktemp -d /tmp/kiln-stdin.XXXXXX) || exit 125
  mkfifo -m 600 "$d/in" || exit 125
  exec 4<>"$d/in" 5<"$d/in"
  rm -rf "$d"
  sleep infinity >&4 4>&- 5<&- </dev/null &
  holder=$!
  exec 4>&-
else
  exec 5</dev/null
  holder=0
fi
printf '\\036kiln-spawn %s %s\\n' "$$" "$holder" >&2
exec /bin/sh -c "$1" <&5 5<&-
`;

export interface SpawnRequest {
  command: string;
  cwd?: string;
  env?: Record<string, string>;
  stdin: boolean;
  timeoutMs: number;
  maxOutputBytes: number;
  abortSignal?: AbortSignal;
}

interface Started {
  pid: number;
  holder: number;
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

export async function spawnProcess(
  sandbox: Sandbox,
  request: SpawnRequest,
): Promise<SandboxProcess | WritableSandboxProcess> {
  request.abortSignal?.throwIfAborted();
  const stdout = textStream();
  const stderr = textStream();
  const killer = new AbortController();
  const signal = request.abortSignal ? AbortSignal.any([killer.signal, request.abortSignal]) : killer.signal;

  let resolveStarted!: (started: Started | undefined) => void;
  const started = new Promise<Started | undefined>((resolve) => {
    resolveStarted = resolve;
  });
  // The first stderr line is the wrapper's marker; anything else there (the command could not
  // start) is passed through as it is.
  let head: string | undefined = "";
  const onStderr = (chunk: string) => {
    if (head === undefined) return stderr.push(chunk);
    head += chunk;
    const newline = head.indexOf("\n");
    if (newline < 0 && MARKER.startsWith(head.slice(0, MARKER.length))) return;
    const line = newline < 0 ? "" : head.slice(0, newline);
    const rest = head;
    head = undefined;
    if (line.startsWith(MARKER)) {
      const [pid, holder] = line.slice(MARKER.length).split(" ").map(Number);
      resolveStarted({ pid: pid ?? 0, holder: holder ?? 0 });
      stderr.push(rest.slice(newline + 1));
    } else {
      resolveStarted(undefined);
      stderr.push(rest);
    }
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
  const run = sandbox.exec(
    ["/bin/sh", "-c", WRAPPER, "kiln-spawn", request.command, request.stdin ? "1" : "0"],
    options,
  );

  const exited = new AbortController();
  const finished = run.then(
    (result) => ({ exitCode: result.exitCode }),
    (err: unknown) => ({ error: err }),
  );
  void finished.then(() => {
    if (head !== undefined && head !== "") stderr.push(head);
    head = undefined;
    resolveStarted(undefined);
    stdout.close();
    stderr.close();
    exited.abort();
  });

  const info = await started;
  if (!info) {
    // No marker: the wrapper never ran (a missing working directory gives exit 127 and a
    // message, like a shell), or core could not run anything at all, which rejects spawn().
    const outcome = await finished;
    if ("error" in outcome) throw outcome.error;
  }

  const handle: SandboxProcess = {
    ...(info ? { pid: info.pid } : {}),
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
  if (!request.stdin) return handle;
  return { ...handle, stdin: stdinStream(sandbox, info?.holder, exited.signal) };
}

/** Writes go to the holder's end of the FIFO, one exec each; close (or abort) kills the holder. */
function stdinStream(sandbox: Sandbox, holder: number | undefined, exited: AbortSignal): WritableStream<Uint8Array> {
  const gone = () => new Error("the process has exited: its stdin is closed");
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      if (!holder || exited.aborted) throw gone();
      const result = await sandbox.exec(["dd", `of=/proc/${holder}/fd/1`, "bs=65536", "conv=notrunc", "status=none"], {
        stdin: chunk,
        // A full pipe blocks the write until the command reads: that is the backpressure.
        timeoutMs: 24 * 60 * 60_000,
        signal: exited,
      });
      if (result.exitCode !== 0) throw exited.aborted ? gone() : new Error(`writing stdin failed: ${result.stderr}`);
    },
    async close() {
      if (holder && !exited.aborted) await sandbox.exec(`kill ${holder}`, { signal: exited });
    },
    async abort() {
      if (holder && !exited.aborted) await sandbox.exec(`kill ${holder}`, { signal: exited });
    },
  });
}
