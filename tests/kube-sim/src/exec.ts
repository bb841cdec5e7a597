/**
 * pods/exec over WebSocket, backed by a Docker exec whose hijacked stream is the process's
 * stdin/stdout/stderr, so real processes run (a long-lived one too, as Kiln's agent).
 *
 * Protocol: the Pod API reference's "connect exec" operation
 * (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/), the channel
 * framing of https://github.com/kubernetes/apimachinery/blob/master/pkg/util/httpstream/wsstream/doc.go
 * and KEP-4006 "Transition from SPDY to WebSockets" for v5
 * (https://github.com/kubernetes/enhancements/tree/master/keps/sig-api-machinery/4006-transition-spdy-to-websockets):
 * every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (the
 * final Status as JSON: Success, or Failure with reason NonZeroExitCode and the exit code as the
 * cause of type ExitCode), 4 resize (`{"Width":w,"Height":h}`, keys matched case-insensitively). `v5.channel.k8s.io` adds
 * 255 = close one channel (`[255, 0]` closes stdin: the process reads EOF); with
 * `v4.channel.k8s.io` a client can only end stdin by closing the whole connection.
 * The server picks the first protocol of the client's list that it speaks (v5, v4).
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import type { WebSocket } from "ws";

export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;
const HIGH_WATER = 4 * 1024 * 1024;

export interface ExecRequest {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export function parseExecQuery(url: URL): ExecRequest {
  const flag = (name: string, dflt: boolean) => {
    const v = url.searchParams.get(name);
    return v === null ? dflt : v === "true" || v === "1";
  };
  // PodExecOptions defaults (the "connect exec" parameters of
  // https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/):
  // stdout and stderr true, stdin and tty false.
  return {
    command: url.searchParams.getAll("command"),
    stdin: flag("stdin", false),
    stdout: flag("stdout", true),
    stderr: flag("stderr", true),
    tty: flag("tty", false),
  };
}

/** Picks the subprotocol as the API server does: the first of the client's it supports. */
export function pickProtocol(req: IncomingMessage): string | undefined {
  const offered = String(req.headers["sec-websocket-protocol"] ?? "")
    .split(",")
    .map((s) => s.trim());
  return offered.find((p) => EXEC_PROTOCOLS.includes(p));
}

export async function runExec(ws: WebSocket, docker: Docker, containerId: string, r: ExecRequest): Promise<void> {
  const v5 = ws.protocol === "v5.channel.k8s.io";
  const frame = (channel: number, data: Buffer) => {
    const b = Buffer.allocUnsafe(data.length + 1);
    b[0] = channel;
    data.copy(b, 1);
    ws.send(b);
  };
  const finish = (status: Record<string, unknown>) => {
    if (ws.readyState !== ws.OPEN) return;
    frame(ERROR, Buffer.from(JSON.stringify(status)));
    ws.close(1000);
  };
  // Messages that arrive while the Docker exec is being set up wait here, in order.
  const early: Buffer[] = [];
  let onMessage: ((data: Buffer) => void) | undefined;
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    if (onMessage) onMessage(data);
    else early.push(data);
  });
  let exec: Docker.Exec;
  let sock: Duplex;
  try {
    exec = await docker.getContainer(containerId).exec({
      Cmd: r.command,
      AttachStdin: r.stdin,
      AttachStdout: r.stdout,
      AttachStderr: r.stderr,
      Tty: r.tty,
    });
    sock = (await exec.start({
      hijack: true,
      stdin: true,
      Tty: r.tty,
    } as Docker.ExecStartOptions)) as unknown as Duplex;
  } catch (err) {
    finish({
      metadata: {},
      status: "Failure",
      message: `Internal error occurred: error executing command in container: ${(err as Error).message}`,
      reason: "InternalError",
      code: 500,
    });
    return;
  }
  // As the API server's createWebSocketStreams (k8s.io/apiserver/pkg/util/proxy/websocket.go):
  // "Send an empty message to the lowest writable channel to notify the client the connection
  // is established" (client-node skips empty frames; clients may wait for it before writing).
  frame(r.stdout ? STDOUT : r.stderr && !r.tty ? STDERR : ERROR, Buffer.alloc(0));

  const forward = (channel: number, data: Buffer) => {
    if (ws.readyState !== ws.OPEN || data.length === 0) return;
    frame(channel, data);
    if (ws.bufferedAmount > HIGH_WATER) {
      sock.pause();
      const poll = () => {
        if (ws.readyState !== ws.OPEN || ws.bufferedAmount < HIGH_WATER / 2) sock.resume();
        else setTimeout(poll, 5);
      };
      setTimeout(poll, 5);
    }
  };
  if (r.tty) sock.on("data", (chunk: Buffer) => forward(STDOUT, chunk));
  else {
    // Docker's multiplexed stream: 8-byte header (stream type, 3 zero bytes, u32 BE length).
    let pending: Buffer = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 8) {
        const len = pending.readUInt32BE(4);
        if (pending.length < 8 + len) break;
        forward(pending[0] === 2 ? STDERR : STDOUT, pending.subarray(8, 8 + len));
        pending = pending.subarray(8 + len);
      }
    });
  }

  // Backpressure on stdin, as the real API server's stream has: while the process has not taken
  // what was written, the WebSocket is not read, so the client's sends wait (TCP) instead of
  // piling up here. Without it a client could finish sending a large upload long before the
  // process had read it, and then wait on a reply with nothing left to show progress: on a
  // loaded machine, longer than its idle deadline (Kiln's agent calls: 15 s).
  let stdinFull = false;
  const resume = () => {
    if (!stdinFull) return;
    stdinFull = false;
    ws.resume();
  };
  sock.on("drain", resume);
  sock.on("close", resume);
  onMessage = (data: Buffer) => {
    const payload = data.subarray(1);
    switch (data[0]) {
      case STDIN:
        if (r.stdin && payload.length > 0 && !sock.write(payload) && !stdinFull) {
          stdinFull = true;
          ws.pause();
        }
        break;
      case RESIZE:
        try {
          // remotecommand.TerminalSize{Width, Height} has no JSON tags, and Go's decoder matches
          // keys case-insensitively: client-node sends {"width","height"}, client-go {"Width","Height"}.
          const raw = JSON.parse(payload.toString("utf8")) as Record<string, number>;
          const size = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
          if (r.tty && size.width && size.height) void exec.resize({ w: size.width, h: size.height }).catch(() => {});
        } catch {
          // a malformed resize is ignored, as the kubelet logs and drops it
        }
        break;
      case CLOSE:
        if (v5 && payload[0] === STDIN) sock.end();
        break;
    }
  };
  for (const m of early.splice(0)) onMessage(m);
  ws.on("close", () => sock.destroy());
  ws.on("error", () => sock.destroy());
  if (ws.readyState !== ws.OPEN) sock.destroy();

  let ended = false;
  const onEnd = async () => {
    if (ended) return;
    ended = true;
    let code: number | null | undefined;
    for (let i = 0; i < 100; i++) {
      const info = await exec.inspect().catch(() => undefined);
      if (!info) break;
      if (!info.Running) {
        code = info.ExitCode;
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    if (code === 0) finish({ metadata: {}, status: "Success" });
    else
      finish({
        metadata: {},
        status: "Failure",
        message: `command terminated with non-zero exit code: error executing command [${r.command.join(" ")}], exit code ${code ?? -1}`,
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: String(code ?? -1) }] },
      });
  };
  sock.on("end", () => void onEnd());
  sock.on("close", () => void onEnd());
  sock.on("error", () => void onEnd());
}
