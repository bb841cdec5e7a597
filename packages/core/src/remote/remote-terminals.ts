/**
 * sandbox.pty, sandbox.processes and sandbox.previewUrl over a Kiln server's routes
 * (design/server.md). A terminal is the server's PTY WebSocket, opened with a one-time ticket
 * (POST /v1/tickets) so it needs nothing but the platform's own WebSocket (Node 22+).
 */
import { AgentUnavailableError, InvalidArgumentError } from "../errors.ts";
import { OutputCollector } from "../sandbox/output.ts";
import type { SandboxProcesses } from "../sandbox/processes.ts";
import type { SandboxPty } from "../sandbox/pty.ts";
import type {
  PreviewUrl,
  PreviewUrlOptions,
  ProcessInfo,
  ProcessLogsOptions,
  ProcessStartOptions,
  Pty,
  PtyCreateOptions,
} from "../types.ts";
import { describe, optionalObject } from "../validate.ts";
import type { HttpClient } from "./http-client.ts";
import { errorFromBody, parseErrorBody } from "./http-errors.ts";
import { readSse } from "./sse.ts";

/** Output kept for a paused (or not yet listened to) remote terminal handle. */
const HELD_MAX_BYTES = 1024 * 1024;
const LOGS_MAX_BYTES = 1024 * 1024;

export class RemotePtys implements SandboxPty {
  readonly #client: HttpClient;
  readonly #path: string;

  constructor(client: HttpClient, sandboxId: string) {
    this.#client = client;
    this.#path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}`;
  }

  async create(options: PtyCreateOptions): Promise<Pty> {
    const body = optionalObject("options", options);
    const { ptyId } = await this.#client.json<{ ptyId: string }>("POST", `${this.#path}/pty`, {
      json: body,
      what: "pty.create",
    });
    return this.connect(ptyId);
  }

  async connect(id: string): Promise<Pty> {
    if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      throw new InvalidArgumentError("id", `is not a terminal id, got ${describe(id)}`);
    }
    const { ticket } = await this.#client.json<{ ticket: string }>("POST", "/v1/tickets", { what: "pty.connect" });
    const url = `${this.#client.url.replace(/^http/, "ws")}${this.#path}/pty/${encodeURIComponent(id)}?ticket=${encodeURIComponent(ticket)}`;
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    const pty = new RemotePty(id, socket, this.#client, `${this.#path}/pty/${encodeURIComponent(id)}`);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener(
        "error",
        () => reject(new AgentUnavailableError(`could not attach to terminal ${id} (unknown, or the server refused)`)),
        { once: true },
      );
    });
    return pty;
  }
}

class RemotePty implements Pty {
  readonly id: string;
  readonly #socket: WebSocket;
  readonly #client: HttpClient;
  readonly #path: string;
  readonly #listeners = new Set<(bytes: Uint8Array) => void>();
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #paused = false;
  readonly #exit: Promise<{ exitCode: number }>;

  constructor(id: string, socket: WebSocket, client: HttpClient, path: string) {
    this.id = id;
    this.#socket = socket;
    this.#client = client;
    this.#path = path;
    this.#exit = new Promise((resolve, reject) => {
      socket.addEventListener("message", (event) => {
        if (typeof event.data === "string") {
          const message = JSON.parse(event.data) as { type?: string; exitCode?: number };
          if (message.type === "exit") resolve({ exitCode: Number(message.exitCode) });
          return;
        }
        this.#deliver(new Uint8Array(event.data as ArrayBuffer));
      });
      socket.addEventListener("close", () =>
        reject(new AgentUnavailableError(`the connection to terminal ${id} closed before it exited`)),
      );
    });
    this.#exit.catch(() => {});
  }

  onData(callback: (bytes: Uint8Array) => void): () => void {
    this.#listeners.add(callback);
    if (!this.#paused) this.#flush();
    return () => this.#listeners.delete(callback);
  }

  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    this.#open().send(bytes);
  }

  async resize(cols: number, rows: number): Promise<void> {
    for (const [field, value] of [
      ["cols", cols],
      ["rows", rows],
    ] as const) {
      if (!Number.isInteger(value) || value < 1 || value > 10_000) {
        throw new InvalidArgumentError(field, `must be a whole number from 1 to 10000, got ${describe(value)}`);
      }
    }
    this.#open().send(JSON.stringify({ type: "resize", cols, rows }));
  }

  async kill(): Promise<void> {
    await this.#client.empty("DELETE", this.#path, { what: "pty.kill" });
  }

  wait(): Promise<{ exitCode: number }> {
    return this.#exit;
  }

  /** Holds output here (the last 1 MiB) until resume(); the WebSocket keeps reading. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#flush();
  }

  close(): void {
    this.#socket.close(1000);
    this.#listeners.clear();
  }

  #open(): WebSocket {
    if (this.#socket.readyState !== WebSocket.OPEN) {
      throw new AgentUnavailableError(`the connection to terminal ${this.id} is closed: connect(id) again`);
    }
    return this.#socket;
  }

  #deliver(bytes: Uint8Array): void {
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
    while (this.#heldBytes > HELD_MAX_BYTES && this.#held.length > 1) {
      this.#heldBytes -= (this.#held.shift() as Uint8Array).length;
    }
    if (!this.#paused) this.#flush();
  }

  #flush(): void {
    if (this.#listeners.size === 0 || this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const bytes of held) {
      for (const listener of this.#listeners) {
        try {
          listener(bytes);
        } catch {
          // a throwing listener must not stop the others
        }
      }
    }
  }
}

export class RemoteProcesses implements SandboxProcesses {
  readonly #client: HttpClient;
  readonly #path: string;

  constructor(client: HttpClient, sandboxId: string) {
    this.#client = client;
    this.#path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/processes`;
  }

  start(command: string | string[], options?: ProcessStartOptions): Promise<{ pid: number; tag?: string }> {
    return this.#client.json("POST", this.#path, {
      json: { command, ...optionalObject("options", options) },
      what: "processes.start",
    });
  }

  async list(): Promise<ProcessInfo[]> {
    return (await this.#client.json<{ processes: ProcessInfo[] }>("GET", this.#path, { what: "processes.list" }))
      .processes;
  }

  async logs(pid: number, options?: ProcessLogsOptions): Promise<{ stdout: string; stderr: string }> {
    const o = options ?? {};
    const stdout = new OutputCollector(LOGS_MAX_BYTES, o.onStdout);
    const stderr = new OutputCollector(LOGS_MAX_BYTES, o.onStderr);
    const result = await this.#follow(pid, !!o.follow, "processes.logs", o.signal, (event) => {
      if (event.type === "stdout") stdout.push(Buffer.from(String(event.data), "utf8"));
      else if (event.type === "stderr") stderr.push(Buffer.from(String(event.data), "utf8"));
    });
    // A server that answered with JSON (not a stream) sent the logs whole.
    if (result?.json) return { stdout: String(result.json.stdout), stderr: String(result.json.stderr) };
    return { stdout: stdout.text(), stderr: stderr.text() };
  }

  async signal(pid: number, signal = "SIGTERM"): Promise<void> {
    await this.#client.empty("POST", `${this.#path}/${validPid(pid)}/signal`, {
      json: { signal },
      what: "processes.signal",
    });
  }

  /**
   * Streamed, not one JSON answer: a process may run quietly for longer than a JSON call may
   * stay silent (the client's idle timeout, 5 min); the stream's keep-alive comments carry the wait.
   */
  async wait(pid: number): Promise<{ exitCode: number }> {
    const result = await this.#follow(pid, true, "processes.wait", undefined, () => {});
    const answer = result?.json ?? result?.result;
    if (answer?.exitCode === undefined) {
      throw new AgentUnavailableError(`the server ended the wait for process ${pid} without its exit code`);
    }
    return { exitCode: Number(answer.exitCode) };
  }

  /**
   * GET …/processes/{pid}/logs as an event stream: each stdout/stderr event to `onEvent`, until
   * the final `result` (returned) or an `error` (thrown). Undefined when aborted through `signal`.
   */
  async #follow(
    pid: number,
    follow: boolean,
    what: string,
    signal: AbortSignal | undefined,
    onEvent: (event: { type: string; data?: unknown }) => void,
  ): Promise<{ result?: Record<string, unknown>; json?: Record<string, unknown> } | undefined> {
    const response = await this.#client.send("GET", `${this.#path}/${validPid(pid)}/logs`, {
      query: { follow: follow ? "true" : "false" },
      accept: "text/event-stream",
      ...(signal ? { signal } : {}),
      what,
    });
    try {
      if (!(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
        return { json: (await response.json()) as Record<string, unknown> };
      }
      for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
        const event = JSON.parse(message.data) as { type: string; data?: unknown; result?: unknown };
        if (event.type === "error") {
          throw errorFromBody(parseErrorBody(event) ?? { code: "INTERNAL", message: "the stream failed" });
        }
        if (event.type === "result") return { result: (event.result ?? {}) as Record<string, unknown> };
        onEvent(event);
      }
      if (!signal?.aborted) throw new AgentUnavailableError(`the server ended the stream of process ${pid} early`);
    } catch (err) {
      if (!signal?.aborted) throw this.#client.failure(err, { what, ...(signal ? { signal } : {}) });
    } finally {
      await response.body?.cancel().catch(() => {});
    }
    return undefined;
  }
}

export function remotePreviewUrl(
  client: HttpClient,
  sandboxId: string,
  port: number,
  options?: PreviewUrlOptions,
): Promise<PreviewUrl> {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError("port", `must be a port number from 1 to 65535, got ${describe(port)}`);
  }
  return client.json("POST", `/v1/sandboxes/${encodeURIComponent(sandboxId)}/ports/${port}/preview`, {
    json: optionalObject("options", options),
    what: "previewUrl",
  });
}

function validPid(pid: unknown): number {
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid < 1) {
    throw new InvalidArgumentError("pid", `must be a process id (a positive whole number), got ${describe(pid)}`);
  }
  return pid;
}
