/**
 * pods/exec over WebSocket: the channel to a sandbox's agent (one long-lived exec per sandbox)
 * and one-shot commands (tar for files). @kubernetes/client-node's WebSocketHandler opens the
 * socket (kubeconfig auth and TLS, subprotocol v5.channel.k8s.io with v4 and older as
 * fallbacks); the framing is Kubernetes' remotecommand protocol: each binary message starts
 * with its channel byte, 0 stdin, 1 stdout, 2 stderr, 3 status (a v1 Status as JSON when the
 * process ends), 4 resize, and in v5 only 255 "close" (the next byte names the channel), with
 * which a client half-closes stdin.
 * https://kubernetes.io/docs/reference/using-api/websockets/ (KEP-4006 for v5).
 */
import { stringify } from "node:querystring";
import { Duplex, PassThrough } from "node:stream";
import type { ProcessChannel } from "@kiln/core/engine";
import type { KubeConfig, V1Status } from "@kubernetes/client-node";
// Not re-exported by the package's index (which has no exports map): the module Exec itself uses.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import WebSocket from "ws";

type WebSocketClient = Awaited<ReturnType<WebSocketHandler["connect"]>>;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
const CLOSE = 255;
const V5 = "v5.channel.k8s.io";
const STDERR_KEEP = 8 * 1024;
const OPEN_WAIT_MS = 1_000;

/** The exit code a v1 Status reports (0 for Success; -1 when it names none). */
export function exitCode(status: V1Status): number {
  if (status.status === "Success") return 0;
  const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : -1;
}

interface Socket {
  ws: WebSocketClient;
  /** The subprotocol the server chose ("" when it chose none). */
  protocol: string;
}

export interface ExecTarget {
  kubeConfig: KubeConfig;
  namespace: string;
  pod: string;
  container: string;
  /** Test-only: the subprotocols to offer (default client-node's: v5, v4, and older). */
  protocols?: string[];
}

/**
 * The handler never touches process.stdin/stdout: client-node's default streams are the
 * process's own, and a v5 close frame for stdout would end this process's stdout.
 */
function handler(kubeConfig: KubeConfig, protocols?: string[]): WebSocketHandler {
  const factory =
    protocols === undefined
      ? undefined
      : (uri: string, _offered: string[], opts: WebSocket.ClientOptions) => new WebSocket(uri, protocols, opts);
  return new WebSocketHandler(kubeConfig, factory as never, {
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    stderr: new PassThrough(),
  });
}

async function connect(
  target: ExecTarget,
  argv: string[],
  onMessage: (channel: number, data: Buffer) => void,
): Promise<Socket> {
  const query = stringify({
    stdout: "true",
    stderr: "true",
    stdin: "true",
    tty: "false",
    container: target.container,
    command: argv,
  });
  const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec?${query}`;
  let opened: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const ws = await handler(target.kubeConfig, target.protocols).connect(path, null, (channel: number, data: Buffer) => {
    opened();
    onMessage(channel, data);
    return true;
  });
  // The server opens each output channel with an empty frame once the process is attached; stdin
  // sent before that may be lost by servers that attach late (kube-sim did), so wait for it
  // (bounded: a server that sends no opening frame costs OPEN_WAIT_MS once per exec).
  await Promise.race([first, new Promise((r) => setTimeout(r, OPEN_WAIT_MS).unref())]);
  return { ws, protocol: ws.protocol };
}

function frame(channel: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length + 1);
  out[0] = channel;
  data.copy(out, 1);
  return out;
}

/** The socket under a ws client, for ref/unref (an idle channel must not keep Node alive). */
function rawSocket(ws: WebSocketClient): { ref?(): void; unref?(): void } | undefined {
  return (ws as unknown as { _socket?: { ref?(): void; unref?(): void } })._socket;
}

/**
 * A long-lived process as a ProcessChannel: writes go to its stdin (channel 0), reads come
 * from its stdout (channel 1), stderr (2) is kept, bounded, and the status (3) ends the stream.
 * `onActivity` is called on each write (the idle auto-stop's clock).
 */
export async function openExecChannel(
  target: ExecTarget,
  argv: string[],
  onActivity?: () => void,
): Promise<ProcessChannel & { protocol: string; exit: Promise<number> }> {
  let stderr = "";
  let stream: Duplex | undefined;
  const early: Buffer[] = [];
  let resolveExit: (code: number) => void = () => {};
  const exit = new Promise<number>((resolve) => {
    resolveExit = resolve;
  });
  const onMessage = (channel: number, data: Buffer) => {
    if (channel === STDOUT) {
      if (!stream) early.push(data);
      else {
        if (!stream.push(data)) socket?.ws.pause();
      }
    } else if (channel === STDERR) {
      if (stderr.length < STDERR_KEEP) stderr += data.toString("utf8");
    } else if (channel === STATUS) {
      try {
        resolveExit(exitCode(JSON.parse(data.toString("utf8")) as V1Status));
      } catch {
        resolveExit(-1);
      }
    } else if (channel === CLOSE && data[0] === STDOUT) {
      stream?.push(null);
    }
  };
  let socket: Socket | undefined;
  socket = await connect(target, argv, onMessage);
  const { ws, protocol } = socket;
  stream = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      onActivity?.();
      ws.send(frame(STDIN, chunk), (err?: Error) => callback(err ?? null));
    },
    final(callback) {
      // v5 half-closes stdin; v4 has no such frame (the process sees EOF only when the socket closes).
      if (protocol === V5) ws.send(Buffer.from([CLOSE, STDIN]), (err?: Error) => callback(err ?? null));
      else callback();
    },
    read() {
      ws.resume();
    },
    destroy(err, callback) {
      ws.terminate();
      callback(err);
    },
  });
  for (const chunk of early.splice(0)) stream.push(chunk);
  ws.on("close", () => {
    resolveExit(-1);
    if (stream && !stream.readableEnded) stream.push(null);
  });
  ws.on("error", (err: Error) => stream?.destroy(err));
  const s = stream;
  return {
    stream: s,
    stderr: () => stderr,
    close: () => ws.terminate(),
    ref: () => rawSocket(ws)?.ref?.(),
    unref: () => rawSocket(ws)?.unref?.(),
    protocol,
    exit,
  };
}

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

/**
 * Runs `argv` to completion with `stdin` (then EOF), collecting stdout. On v4, which cannot
 * half-close stdin, callers pass commands that stop reading on their own (`head -c N | ...`).
 */
export async function runExec(target: ExecTarget, argv: string[], stdin?: Buffer): Promise<ExecResult> {
  const out: Buffer[] = [];
  let err = "";
  let settle: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const { ws, protocol } = await connect(target, argv, (channel, data) => {
    if (channel === STDOUT) out.push(Buffer.from(data));
    else if (channel === STDERR) err += data.toString("utf8");
    else if (channel === STATUS) {
      try {
        settle(exitCode(JSON.parse(data.toString("utf8")) as V1Status));
      } catch {
        settle(-1);
      }
    }
  });
  ws.on("close", () => settle(-1));
  if (stdin && stdin.length > 0) {
    const CHUNK = 256 * 1024;
    for (let i = 0; i < stdin.length; i += CHUNK) {
      await new Promise<void>((resolve, reject) =>
        ws.send(frame(STDIN, stdin.subarray(i, i + CHUNK)), (e?: Error) => (e ? reject(e) : resolve())),
      );
    }
  }
  if (protocol === V5) ws.send(Buffer.from([CLOSE, STDIN]));
  const code = await done;
  ws.close();
  return { stdout: Buffer.concat(out), stderr: err, exitCode: code };
}
