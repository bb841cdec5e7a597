/**
 * One MCP session's server: the five code-interpreter tools (core's texts and runTool, charts as
 * MCP image content) plus sandbox lifecycle, background processes and preview URLs. The session
 * owns one sandbox, made on its first call that needs one and deleted when the session closes or
 * sits idle; a call may name another sandbox instead. Where sandboxes come from (this machine's
 * Kiln, a remote Kiln, the server's organisation view) and which scopes the caller has is the
 * backend's business (see backend.ts).
 */
import { type CreateSandboxOptions, KilnError, type Language, type Sandbox } from "@kiln/core";
import {
  ADAPTER_LABEL_KEY,
  describeTools,
  INPUT_DESCRIPTIONS,
  runTool,
  type ToolName,
  type ToolResult,
  toolLimits,
} from "@kiln/core/tools";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { McpBackend, McpScope, ToolCall } from "./backend.ts";
import { VERSION } from "./version.ts";

/** A session's sandbox is deleted after this long without a tool call. */
export const DEFAULT_SESSION_IDLE_MS = 15 * 60_000;

export interface KilnMcpOptions {
  backend: McpBackend;
  /** Options of the session's own sandbox (labels gain `kiln-adapter: "mcp"`). */
  sandboxOptions?: Omit<CreateSandboxOptions, "name" | "signal">;
  /** Delete the session's sandbox (and, over HTTP, end the session) after this long without a call. @default 900_000 */
  idleTimeoutMs?: number;
  /** Called when the idle timer ended the session (HTTP drops its transport). */
  onIdle?: () => void;
  /** Time limit of one run_code or run_command call. @default 60_000 */
  timeoutMs?: number;
  /** Characters kept per stream. @default 12_000 */
  maxOutputChars?: number;
}

export interface KilnMcpSession {
  readonly server: McpServer;
  /** The id of the session's own sandbox, once made. */
  readonly sandboxId: string | undefined;
  /** Deletes the session's own sandbox (never one made with create_sandbox). Idempotent. */
  close(): Promise<void>;
}

const SANDBOX_FIELD = z
  .string()
  .min(1)
  .optional()
  .describe("Id or name of the sandbox to use. Default: this session's own sandbox, made on first use");

/** The scope each tool needs: the scope of the HTTP route it mirrors. */
export const TOOL_SCOPES: Record<string, McpScope> = {
  run_code: "sandboxes:exec",
  run_command: "sandboxes:exec",
  read_file: "files:read",
  write_file: "files:write",
  list_files: "files:read",
  create_sandbox: "sandboxes:write",
  list_sandboxes: "sandboxes:read",
  delete_sandbox: "sandboxes:write",
  snapshot_sandbox: "snapshots:write",
  start_process: "sandboxes:exec",
  preview_url: "sandboxes:exec",
};

class ToolRefusal extends Error {}

function toContent(result: ToolResult): CallToolResult {
  return {
    content: [
      { type: "text", text: result.text },
      ...result.images.map((image) => ({ type: "image" as const, data: image.data, mimeType: image.mediaType })),
    ],
    ...(result.ok ? {} : { isError: true }),
  };
}

function textResult(text: string, isError = false): CallToolResult {
  return { content: [{ type: "text", text }], ...(isError ? { isError: true } : {}) };
}

function json(value: unknown): CallToolResult {
  return textResult(JSON.stringify(value, null, 2));
}

/** Makes the MCP server of one session. */
export function createKilnMcpSession(options: KilnMcpOptions): KilnMcpSession {
  const { backend } = options;
  const limits = toolLimits({
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxOutputChars === undefined ? {} : { maxOutputChars: options.maxOutputChars }),
  });
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_SESSION_IDLE_MS;
  const defaultLanguage: Language = options.sandboxOptions?.language ?? "python";
  const network = options.sandboxOptions?.network;
  const descriptions = describeTools({
    ...limits,
    defaultLanguage,
    network: network === "none" || network === "egress" ? network : undefined,
  });

  let own: Promise<Sandbox> | undefined;
  let ownId: string | undefined;
  let closed = false;
  let idleTimer: NodeJS.Timeout | undefined;
  /** Tool calls running now: the session is not idle while one runs, however long it takes. */
  let running = 0;

  const release = async () => {
    const pending = own;
    own = undefined;
    ownId = undefined;
    if (!pending) return;
    const sandbox = await pending.catch(() => undefined);
    if (sandbox) await backend.delete(sandbox).catch(() => {});
  };

  const touch = () => {
    clearTimeout(idleTimer);
    if (closed || running > 0 || idleTimeoutMs <= 0 || !Number.isFinite(idleTimeoutMs)) return;
    idleTimer = setTimeout(() => {
      void release().finally(() => options.onIdle?.());
    }, idleTimeoutMs);
    idleTimer.unref();
  };

  const require = (scope: McpScope) => {
    const refused = backend.authorize?.(scope);
    if (refused !== undefined) throw new ToolRefusal(refused);
  };

  /** The sandbox a call names, or the session's own (made now if need be). */
  const sandboxFor = async (named: string | undefined): Promise<Sandbox> => {
    if (named !== undefined) return backend.get(named);
    if (closed) throw new ToolRefusal("This MCP session is closed");
    if (!own) {
      require("sandboxes:write");
      own = backend.create({
        ...options.sandboxOptions,
        labels: { ...options.sandboxOptions?.labels, [ADAPTER_LABEL_KEY]: "mcp" },
        // Holds if this process dies before the session ends.
        ...(options.sandboxOptions?.autoStopMs === undefined && idleTimeoutMs > 0 && Number.isFinite(idleTimeoutMs)
          ? { autoStopMs: idleTimeoutMs }
          : {}),
      });
      own.then(
        (s) => {
          ownId = s.id;
        },
        () => {
          own = undefined;
        },
      );
    }
    return own;
  };

  /** Runs a tool body: scope check, idle timer, and every failure as an isError result. */
  const guarded =
    <A>(name: string, body: (args: A) => Promise<CallToolResult>) =>
    async (args: A): Promise<CallToolResult> => {
      running++;
      touch(); // stops the idle clock until the last running call has ended
      const started = performance.now();
      let outcome: ToolCall["outcome"] = "ok";
      try {
        require(TOOL_SCOPES[name] as McpScope);
        const result = await body(args);
        if (result.isError) outcome = "error";
        return result;
      } catch (err) {
        outcome = "error";
        if (err instanceof ToolRefusal) {
          if (err.message.startsWith("FORBIDDEN")) outcome = "denied";
          return textResult(err.message, true);
        }
        if (KilnError.isInstance(err)) {
          const message = backend.scrub?.(err.message) ?? err.message;
          return textResult(`${err.code}: ${message}`, true);
        }
        const message = (err as Error)?.message ?? String(err);
        return textResult(`Error: ${backend.scrub?.(message) ?? message}`, true);
      } finally {
        running--;
        touch();
        backend.toolCalled?.(toolCall(name, args, outcome, performance.now() - started));
      }
    };

  const server = new McpServer(
    { name: "kiln", version: VERSION },
    {
      instructions:
        "Kiln runs code in isolated Linux sandboxes. Use run_code for Python/JavaScript/TypeScript, run_command for shell commands, and the file tools to move text in and out. Every call uses this session's own sandbox unless it names one.",
    },
  );

  const five = <N extends ToolName>(name: N, shape: z.ZodRawShape) => {
    server.registerTool(
      name,
      { description: descriptions[name], inputSchema: { ...shape, sandbox: SANDBOX_FIELD } },
      guarded(name, async (args: Record<string, unknown>) => {
        const { sandbox: named, ...input } = args;
        const sandbox = await sandboxFor(named as string | undefined);
        return toContent(await runTool(name, input as never, sandbox, limits));
      }) as never,
    );
  };

  five("run_code", {
    code: z.string().describe(INPUT_DESCRIPTIONS.code),
    language: z
      .enum(["python", "javascript", "typescript"])
      .optional()
      .describe(`The language of the code. Default "${defaultLanguage}"`),
  });
  five("run_command", { command: z.string().describe(INPUT_DESCRIPTIONS.command) });
  five("read_file", { path: z.string().describe(INPUT_DESCRIPTIONS.path) });
  five("write_file", {
    path: z.string().describe(INPUT_DESCRIPTIONS.path),
    content: z.string().describe(INPUT_DESCRIPTIONS.content),
  });
  five("list_files", { path: z.string().optional().describe(INPUT_DESCRIPTIONS.directory) });

  server.registerTool(
    "create_sandbox",
    {
      description:
        "Create a new sandbox that stays until delete_sandbox (unlike this session's own sandbox, which is deleted when the session ends). Answers its SandboxInfo as JSON; pass its id or name as `sandbox` to the other tools.",
      inputSchema: {
        name: z.string().min(1).optional().describe("A unique name for the sandbox (letters, digits, . _ -)"),
        language: z
          .enum(["python", "javascript", "typescript"])
          .optional()
          .describe('The language run_code uses by default. Default "python"'),
        snapshot: z.string().min(1).optional().describe("Start from this snapshot (see snapshot_sandbox)"),
        network: z
          .enum(["none", "egress"])
          .optional()
          .describe('"none": no network (the default); "egress": the internet, never private networks'),
        env: z.record(z.string(), z.string()).optional().describe("Environment variables of every process in it"),
        labels: z.record(z.string(), z.string()).optional().describe("Labels to find it by"),
        resources: z
          .object({
            cpus: z.number().positive().optional().describe("CPU cores"),
            memoryMb: z.number().int().positive().optional().describe("Memory limit in MB"),
          })
          .optional()
          .describe("Resource limits"),
        autoStopMs: z.number().int().positive().optional().describe("Stop it after this many ms without use"),
      },
    },
    guarded("create_sandbox", async (args) => {
      const sandbox = await backend.create(args as Omit<CreateSandboxOptions, "signal">);
      return json(await backend.info(sandbox));
    }),
  );

  server.registerTool(
    "list_sandboxes",
    {
      description: "List the sandboxes you can use, as JSON (id, name, state, language, labels, ...).",
      inputSchema: {
        labels: z.record(z.string(), z.string()).optional().describe("Only sandboxes with all these labels"),
      },
    },
    guarded("list_sandboxes", async (args) => json({ sandboxes: await backend.list(args.labels ?? {}) })),
  );

  server.registerTool(
    "delete_sandbox",
    {
      description:
        "Delete a sandbox and everything in it. Without `sandbox`, deletes this session's own sandbox (a new one is made on the next call).",
      inputSchema: { sandbox: SANDBOX_FIELD },
    },
    guarded("delete_sandbox", async (args) => {
      if (args.sandbox === undefined) {
        if (!own) return textResult("This session has no sandbox yet: nothing to delete.");
        const id = (await own).id;
        await release();
        return textResult(`Deleted sandbox ${id}.`);
      }
      const sandbox = await backend.get(args.sandbox);
      if (sandbox.id === ownId) {
        await release();
      } else {
        await backend.delete(sandbox);
      }
      return textResult(`Deleted sandbox ${args.sandbox}.`);
    }),
  );

  server.registerTool(
    "snapshot_sandbox",
    {
      description:
        "Save a sandbox's files and installed packages as a named snapshot; create_sandbox with `snapshot` starts from it. Answers the snapshot's info as JSON.",
      inputSchema: {
        name: z.string().min(1).describe("The snapshot's name (letters, digits, . _ -)"),
        sandbox: SANDBOX_FIELD,
      },
    },
    guarded("snapshot_sandbox", async (args) => {
      const sandbox = await sandboxFor(args.sandbox);
      return json(await backend.snapshot(sandbox, args.name));
    }),
  );

  server.registerTool(
    "start_process",
    {
      description:
        "Start a long-running command in the background (a web server, a watcher) and return at once with its pid; it keeps running between calls. Use run_command to read its log files, preview_url to open a port it listens on.",
      inputSchema: {
        command: z.string().min(1).describe(INPUT_DESCRIPTIONS.command),
        cwd: z.string().optional().describe("Working directory. Default /workspace"),
        env: z.record(z.string(), z.string()).optional().describe("Extra environment variables"),
        tag: z.string().optional().describe("A tag to find the process by later"),
        sandbox: SANDBOX_FIELD,
      },
    },
    guarded("start_process", async (args) => {
      const sandbox = await sandboxFor(args.sandbox);
      const started = await sandbox.processes.start(args.command, {
        ...(args.cwd === undefined ? {} : { cwd: args.cwd }),
        ...(args.env === undefined ? {} : { env: args.env }),
        ...(args.tag === undefined ? {} : { tag: args.tag }),
      });
      return json(started);
    }),
  );

  server.registerTool(
    "preview_url",
    {
      description:
        "A signed, expiring URL that opens a port a process in the sandbox listens on (e.g. a web app started with start_process). Answers { url, token, expiresAt } as JSON.",
      inputSchema: {
        port: z.number().int().min(1).max(65_535).describe("The port inside the sandbox"),
        sandbox: SANDBOX_FIELD,
      },
    },
    guarded("preview_url", async (args) => {
      const sandbox = await sandboxFor(args.sandbox);
      return json(await sandbox.previewUrl(args.port));
    }),
  );

  return {
    server,
    get sandboxId() {
      return ownId;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(idleTimer);
      await release();
    },
  };
}

/** What the backend learns of a call: the command, a path, the code's size; never contents. */
function toolCall(tool: string, args: unknown, outcome: ToolCall["outcome"], durationMs: number): ToolCall {
  const a = (typeof args === "object" && args !== null ? args : {}) as Record<string, unknown>;
  const detail: Record<string, unknown> = {};
  if (typeof a.command === "string") detail.command = a.command;
  if (typeof a.path === "string") detail.path = a.path;
  if (typeof a.code === "string") detail.codeBytes = Buffer.byteLength(a.code);
  if (typeof a.language === "string") detail.language = a.language;
  if (typeof a.name === "string") detail.name = a.name;
  if (typeof a.port === "number") detail.port = a.port;
  return {
    tool,
    ...(typeof a.sandbox === "string" ? { sandbox: a.sandbox } : {}),
    outcome,
    durationMs: Math.round(durationMs),
    detail,
  };
}
