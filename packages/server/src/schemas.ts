/**
 * The one set of schemas: they validate every request and generate /v1/openapi.json, so the
 * document cannot drift from what the server accepts. Bodies mirror @kiln/core's types
 * (design/api.md). Objects are strict: an unknown field is a 400 naming it.
 */
import { z } from "@hono/zod-openapi";

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/** Names of code contexts (runCode's context). */
export const Name = z
  .string()
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,50}$/,
    "must start with a letter or digit and hold only letters, digits, _ . - (at most 51)",
  )
  .openapi({ example: "dev" });

/**
 * Sandbox, snapshot and volume names: core's whole name rule (the organisation's part is kept
 * apart, see tenancy/org-scope.ts).
 */
export const SandboxName = z
  .string()
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/,
    "must start with a letter or digit and hold only letters, digits, _ . - (at most 63)",
  )
  .openapi({ example: "dev" });

const NoNul = (s: string) => !s.includes("\0");
const Text = z.string().refine(NoNul, "must not contain NUL bytes");
const Labels = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/]{0,127}$/, "label keys are letters, digits and . _ - / (at most 128)"),
    z.string().max(1024).refine(NoNul, "must not contain NUL bytes"),
  )
  .openapi({ example: { team: "ml" } });
const Env = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment names are letters, digits and _"),
  z.string().refine(NoNul, "must not contain NUL bytes"),
);
const Language = z.enum(["python", "javascript", "typescript"]);
export const Network = z.union([
  z.enum(["none", "egress"]),
  z.strictObject({ allow: z.array(z.string().min(1).max(253)).max(256) }),
]);
const Millis = (max: number, min = 0) => z.number().int().min(min).max(max);

export const Resources = z.strictObject({
  cpus: z.number().min(0.01).max(1024).optional(),
  memoryMb: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024)
    .optional(),
  diskMb: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024 * 1024)
    .optional(),
  pids: z.number().int().min(16).max(1_000_000).optional(),
});

export const CreateSandboxBody = z
  .strictObject({
    name: SandboxName.optional(),
    image: z.string().min(1).max(512).refine(NoNul, "must not contain NUL bytes").optional(),
    snapshot: SandboxName.optional(),
    language: Language.optional(),
    labels: Labels.optional(),
    env: Env.optional(),
    resources: Resources.optional(),
    network: Network.optional(),
    volumes: z
      .array(
        z.strictObject({
          volume: SandboxName,
          mountPath: z.string().min(1).max(4096),
          readOnly: z.boolean().optional(),
        }),
      )
      .max(32)
      .optional(),
    autoStopMs: Millis(YEAR_MS, 1000).optional(),
    autoDeleteMs: Millis(YEAR_MS).optional(),
  })
  .openapi("CreateSandboxOptions");

export const SandboxInfo = z
  .object({
    id: z.string(),
    name: z.string().optional(),
    state: z.enum(["running", "paused", "stopped", "error"]),
    labels: z.record(z.string(), z.string()),
    createdAt: z.string(),
    image: z.string(),
    language: Language,
    network: Network,
    resources: z.object({ cpus: z.number(), memoryMb: z.number(), pids: z.number(), diskMb: z.number().optional() }),
  })
  .openapi("SandboxInfo");

export const SandboxList = z.object({ sandboxes: z.array(SandboxInfo) }).openapi("SandboxList");

export const IdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "id", in: "path" }, description: "The sandbox's id or name" }),
});
export const ExecStdinParam = z.object({
  id: IdParam.shape.id,
  execId: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "execId", in: "path" }, description: "The execId of the exec stream's started event" }),
});
export const IdOrNameParam = z.object({
  idOrName: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "idOrName", in: "path" } }),
});
export const NameParam = z.object({ name: SandboxName.openapi({ param: { name: "name", in: "path" } }) });

export const ListQuery = z.object({
  label: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .openapi({ description: "k=v; repeat for several labels (all must match)", param: { name: "label", in: "query" } }),
});

export const ExecBody = z
  .strictObject({
    command: z.union([
      Text.min(1).max(128 * 1024),
      z
        .array(Text.max(128 * 1024))
        .min(1)
        .max(4096),
    ]),
    cwd: Text.max(4096).optional(),
    env: Env.optional(),
    stdin: z
      .string()
      .max(8 * 1024 * 1024)
      .optional(),
    cancellable: z.boolean().optional().openapi({
      description:
        'SSE only: the stream begins with {"type":"started","execId"}; POST /v1/sandboxes/{id}/exec/{execId}/cancel kills the command and the stream goes on to its killed result (implied by stdinStream)',
    }),
    stdinStream: z.boolean().optional().openapi({
      description:
        'Live stdin (SSE only, not with stdin): the stream begins with {"type":"started","execId"}; send the stdin as the raw body of POST /v1/sandboxes/{id}/exec/{execId}/stdin, its end closes stdin',
    }),
    timeoutMs: Millis(24 * 60 * 60 * 1000, 1).optional(),
    maxOutputBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * 1024)
      .optional(),
  })
  .openapi("ExecRequest");

export const CommandResult = z
  .object({
    exitCode: z.number(),
    stdout: z.string(),
    stderr: z.string(),
    status: z.enum(["ok", "error", "timeout", "oom", "killed"]),
    truncated: z.boolean(),
    durationMs: z.number(),
  })
  .openapi("CommandResult");

export const CodeBody = z
  .strictObject({
    code: z.string().max(8 * 1024 * 1024),
    language: Language.optional(),
    context: Name.optional(),
    timeoutMs: Millis(24 * 60 * 60 * 1000, 1).optional(),
    cancellable: z.boolean().optional().openapi({
      description:
        'SSE only: the stream begins with {"type":"started","execId"}; POST /v1/sandboxes/{id}/exec/{execId}/cancel interrupts the cell and the stream goes on to its execution (status killed)',
    }),
  })
  .openapi("RunCodeRequest");

export const Result = z
  .object({
    text: z.string().optional(),
    html: z.string().optional(),
    markdown: z.string().optional(),
    json: z.unknown().optional(),
    png: z.string().optional(),
    jpeg: z.string().optional(),
    svg: z.string().optional(),
    isMainResult: z.boolean(),
  })
  .openapi("Result");

export const Execution = z
  .object({
    results: z.array(Result),
    stdout: z.string(),
    stderr: z.string(),
    error: z.object({ name: z.string(), value: z.string(), traceback: z.string() }).optional(),
    status: z.enum(["ok", "error", "timeout", "oom", "killed"]),
    truncated: z.boolean(),
    durationMs: z.number(),
  })
  .openapi("Execution");

export const FileEntry = z
  .object({
    name: z.string(),
    path: z.string(),
    type: z.enum(["file", "directory", "symlink", "other"]),
    size: z.number(),
    mode: z.number(),
    modifiedAt: z.string(),
  })
  .openapi("FileEntry");

const SandboxPath = z
  .string()
  .min(1)
  .max(4096)
  .refine(NoNul, "must not contain NUL bytes")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..' segments");
export const PathQuery = z.object({
  path: SandboxPath.openapi({ param: { name: "path", in: "query" }, example: "/workspace/data.csv" }),
});
export const DeleteFileQuery = z.object({
  path: SandboxPath.openapi({ param: { name: "path", in: "query" } }),
  recursive: z
    .enum(["true", "false"])
    .optional()
    .openapi({ param: { name: "recursive", in: "query" } }),
});
export const MkdirBody = z.strictObject({ path: SandboxPath }).openapi("MkdirRequest");
export const FileList = z.object({ entries: z.array(FileEntry) }).openapi("FileList");

export const SnapshotInfo = z
  .object({
    name: z.string(),
    createdAt: z.string(),
    sizeBytes: z.number(),
    sourceSandboxId: z.string().optional(),
    state: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("SnapshotInfo");
export const SnapshotBody = z.strictObject({ name: SandboxName }).openapi("SnapshotRequest");
export const SnapshotList = z.object({ snapshots: z.array(SnapshotInfo) }).openapi("SnapshotList");

export const VolumeInfo = z
  .object({ name: z.string(), createdAt: z.string(), labels: z.record(z.string(), z.string()) })
  .openapi("VolumeInfo");
export const VolumeBody = z.strictObject({ name: SandboxName }).openapi("VolumeRequest");
export const VolumeList = z.object({ volumes: z.array(VolumeInfo) }).openapi("VolumeList");

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "SANDBOX_NOT_FOUND" }),
      message: z.string(),
      field: z.string().optional(),
    }),
  })
  .openapi("Error");

export const Health = z
  .object({ status: z.literal("ok"), engine: z.enum(["ok", "unavailable"]), version: z.string() })
  .openapi("Health");

/** `PUT /v1/sandboxes/{id}/network` (issue 13). */
export const NetworkUpdateBody = z.strictObject({ network: Network }).openapi("NetworkUpdate");

/** `GET /v1/sandboxes/{id}/network/log`: the egress proxy's recent decisions, oldest first. */
export const NetworkLog = z
  .object({
    events: z.array(
      z.object({ at: z.string(), host: z.string(), port: z.number(), allowed: z.boolean(), reason: z.string() }),
    ),
  })
  .openapi("NetworkLog");

// --- Terminals, background processes, previews, tickets (issue 12) ---

const Dimension = z.number().int().min(1).max(10_000);
const Command = z.union([
  Text.min(1).max(128 * 1024),
  z
    .array(Text.max(128 * 1024))
    .min(1)
    .max(4096),
]);

export const PtyBody = z
  .strictObject({
    cols: Dimension,
    rows: Dimension,
    command: Command.optional(),
    cwd: Text.max(4096).optional(),
    env: Env.optional(),
  })
  .openapi("PtyRequest");
export const PtyCreated = z.object({ ptyId: z.string() }).openapi("PtyCreated");
export const PtyParam = z.object({
  id: IdParam.shape.id,
  ptyId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "is not a terminal id")
    .openapi({ param: { name: "ptyId", in: "path" } }),
});

export const ProcessBody = z
  .strictObject({
    command: Command,
    cwd: Text.max(4096).optional(),
    env: Env.optional(),
    tag: Text.min(1).max(256).optional(),
  })
  .openapi("ProcessRequest");
export const ProcessStarted = z.object({ pid: z.number(), tag: z.string().optional() }).openapi("ProcessStarted");
export const ProcessInfo = z
  .object({
    pid: z.number(),
    tag: z.string().optional(),
    command: z.string(),
    running: z.boolean(),
    exitCode: z.number().optional(),
  })
  .openapi("ProcessInfo");
export const ProcessList = z.object({ processes: z.array(ProcessInfo) }).openapi("ProcessList");
export const PidParam = z.object({
  id: IdParam.shape.id,
  pid: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 22)
    .openapi({ param: { name: "pid", in: "path" }, type: "integer" }),
});
export const LogsQuery = z.object({
  follow: z
    .enum(["true", "false"])
    .optional()
    .openapi({ param: { name: "follow", in: "query" }, description: "stream until the process ends" }),
});
export const ProcessLogs = z
  .object({ stdout: z.string(), stderr: z.string(), exitCode: z.number().optional() })
  .openapi("ProcessLogs");
export const SignalBody = z
  .strictObject({
    signal: z
      .string()
      .regex(/^(SIG)?[A-Z0-9]{1,10}$|^\d{1,2}$/, "is not a signal name")
      .optional()
      .openapi({ example: "SIGTERM" }),
  })
  .openapi("SignalRequest");

export const PortParam = z.object({
  id: IdParam.shape.id,
  port: z.coerce
    .number()
    .int()
    .min(1)
    .max(65_535)
    .openapi({ param: { name: "port", in: "path" }, type: "integer" }),
});
export const PreviewBody = z
  .strictObject({
    expiresInMs: z
      .number()
      .int()
      .min(1_000)
      .max(30 * 24 * 60 * 60 * 1000)
      .optional(),
  })
  .openapi("PreviewRequest");
export const Preview = z.object({ url: z.string(), token: z.string(), expiresAt: z.string() }).openapi("Preview");
export const Ticket = z.object({ ticket: z.string(), expiresAt: z.string() }).openapi("Ticket");

// --- Custom images (kiln.images.build/list/delete): server-wide, not per organisation ---
const ImageName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_.-]{0,62}$/,
    "must be 1-63 lower-case letters, digits, _ . - starting with a letter or digit",
  )
  .openapi({ example: "ds" });
const Words = z.array(z.string().min(1).max(1024).refine(NoNul, "must not contain NUL bytes")).max(256);
export const ImageSpecBody = z
  .strictObject({
    name: ImageName,
    from: z.string().min(1).max(512).refine(NoNul, "must not contain NUL bytes").optional(),
    apt: Words.optional(),
    pip: Words.optional(),
    npm: Words.optional(),
    run: z
      .array(Text.pipe(z.string().min(1).max(16_384)))
      .max(256)
      .optional(),
    files: z.record(z.string().min(2).max(4096), Text).optional(),
    env: Env.optional(),
    workdir: z.string().min(1).max(4096).optional(),
  })
  .openapi("ImageSpec");
export const ImageBuilt = z.object({ name: z.string(), tag: z.string() }).openapi("ImageBuilt");
export const ImageInfo = z
  .object({ name: z.string(), tag: z.string(), createdAt: z.string(), sizeBytes: z.number() })
  .openapi("ImageInfo");
export const ImageList = z.object({ images: z.array(ImageInfo) }).openapi("ImageList");
export const ImageNameParam = z.object({ name: ImageName.openapi({ param: { name: "name", in: "path" } }) });
