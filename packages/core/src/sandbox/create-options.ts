/**
 * create() options: defaults merged, every field validated with its name, before the engine
 * is touched. Anything wrong throws InvalidArgumentError naming the field.
 */
import { posix } from "node:path";
import { DEFAULT_RESOURCES, MAX_PIDS } from "../defaults.ts";
import type { RuntimeTier } from "../engine/engine.ts";
import { InvalidArgumentError, NotSupportedError } from "../errors.ts";
import { type ValidNetwork, validateNetwork } from "../network/policy.ts";
import {
  type CreateSandboxOptions,
  LANGUAGES,
  type Language,
  type SandboxResources,
  type VolumeAttachment,
} from "../types.ts";
import {
  checkKnownKeys,
  describe,
  optionalBoolean,
  optionalEnv,
  optionalLabels,
  optionalNumber,
  optionalObject,
  optionalOneOf,
  optionalSignal,
  optionalString,
  requireName,
  requireString,
} from "../validate.ts";

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;
const RUNTIMES: readonly RuntimeTier[] = ["runc", "gvisor"];
/** The sandbox's agent, shell and interpreters are found through these PATH entries. */
const REQUIRED_PATH_DIRS = ["/usr/bin", "/bin"];
/** Mount points a volume may not shadow: the system and Kiln's own machinery. */
const RESERVED_MOUNTS = [
  "/",
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/lib64",
  "/opt/kiln",
  "/proc",
  "/run",
  "/sbin",
  "/sys",
  "/usr",
  "/var",
];

/**
 * Every option create() knows: anything else is refused by name, never ignored. The record's type
 * makes the compiler reject this list when an option is added to the types but not here.
 */
const CREATE_KEYS: Record<keyof CreateSandboxOptions, true> = {
  name: true,
  image: true,
  snapshot: true,
  language: true,
  labels: true,
  env: true,
  resources: true,
  runtime: true,
  network: true,
  volumes: true,
  autoStopMs: true,
  autoDeleteMs: true,
  signal: true,
};
export const CREATE_OPTION_KEYS = Object.keys(CREATE_KEYS);
const RESOURCE_KEYS = Object.keys({ cpus: true, memoryMb: true, diskMb: true, pids: true } satisfies Record<
  keyof SandboxResources,
  true
>);
const VOLUME_KEYS = Object.keys({ volume: true, mountPath: true, readOnly: true } satisfies Record<
  keyof VolumeAttachment,
  true
>);

export interface ValidCreate {
  name?: string;
  image?: string;
  snapshot?: string;
  language: Language;
  labels: Record<string, string>;
  env: Record<string, string>;
  resources: { cpus: number; memoryMb: number; pids: number; diskMb?: number };
  network: ValidNetwork;
  runtime: RuntimeTier;
  volumes: { volume: string; mountPath: string; readOnly: boolean }[];
  autoStopMs?: number;
  autoDeleteMs?: number;
  signal?: AbortSignal;
}

export function validateCreate(options: unknown, defaults: Partial<CreateSandboxOptions> = {}): ValidCreate {
  const given = optionalObject("options", options);
  const o: Record<string, unknown> = { ...defaults, ...given };
  const r = optionalObject("options.resources", {
    ...(defaults.resources ?? {}),
    ...optionalObject("options.resources", given.resources),
  });
  checkKnownKeys("options", o, CREATE_OPTION_KEYS);
  checkKnownKeys("options.resources", r, RESOURCE_KEYS);
  if (given.image !== undefined && given.snapshot !== undefined) {
    throw new InvalidArgumentError("options.snapshot", "give either image or snapshot, not both");
  }
  const v: ValidCreate = {
    language: optionalOneOf("options.language", o.language, LANGUAGES) ?? "python",
    labels: optionalLabels("options.labels", o.labels) ?? {},
    env: optionalEnv("options.env", o.env) ?? {},
    resources: {
      cpus:
        optionalNumber("options.resources.cpus", r.cpus, { min: 0.01, max: 1024, integer: false }) ??
        DEFAULT_RESOURCES.cpus,
      memoryMb:
        optionalNumber("options.resources.memoryMb", r.memoryMb, { min: 16, max: 1024 * 1024 }) ??
        DEFAULT_RESOURCES.memoryMb,
      pids: optionalNumber("options.resources.pids", r.pids, { min: 16, max: MAX_PIDS }) ?? DEFAULT_RESOURCES.pids,
    },
    network: validateNetwork("options.network", o.network),
    runtime: optionalOneOf("options.runtime", o.runtime, RUNTIMES) ?? "runc",
    volumes: validateVolumes(o.volumes),
  };
  const path = v.env.PATH;
  if (path !== undefined && !REQUIRED_PATH_DIRS.every((dir) => path.split(":").includes(dir))) {
    throw new InvalidArgumentError(
      "options.env.PATH",
      `must keep ${REQUIRED_PATH_DIRS.join(" and ")} (the sandbox's agent, shell and interpreters live there), e.g. "/opt/tools/bin:/usr/local/bin:/usr/bin:/bin"; got ${describe(path)}`,
    );
  }
  // gVisor's network stack does not run on these kernels: only a sandbox with no network at all.
  if (v.runtime === "gvisor" && v.network !== "none") {
    throw new NotSupportedError(
      `options.network: runtime "gvisor" supports only network "none" (gVisor's own network stack fails on this kernel); use runtime "runc" for ${typeof v.network === "string" ? `"${v.network}"` : "an allow-list"}`,
    );
  }
  const diskMb = optionalNumber("options.resources.diskMb", r.diskMb, { min: 16, max: 1024 * 1024 * 1024 });
  if (diskMb !== undefined) v.resources.diskMb = diskMb;
  if (o.name !== undefined) v.name = requireName("options.name", o.name);
  // A snapshot given to this call wins over a default image, and vice versa.
  if (given.snapshot !== undefined) v.snapshot = requireName("options.snapshot", given.snapshot);
  else if (given.image !== undefined) v.image = requireString("options.image", given.image);
  else if (o.snapshot !== undefined) v.snapshot = requireName("options.snapshot", o.snapshot);
  else if (o.image !== undefined) v.image = optionalString("options.image", o.image);
  const autoStopMs = optionalNumber("options.autoStopMs", o.autoStopMs, { min: 1000, max: YEAR_MS });
  if (autoStopMs !== undefined) v.autoStopMs = autoStopMs;
  const autoDeleteMs = optionalNumber("options.autoDeleteMs", o.autoDeleteMs, { min: 0, max: YEAR_MS });
  if (autoDeleteMs !== undefined) v.autoDeleteMs = autoDeleteMs;
  const signal = optionalSignal("options.signal", o.signal);
  if (signal) v.signal = signal;
  return v;
}

function validateVolumes(value: unknown): ValidCreate["volumes"] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw new InvalidArgumentError("options.volumes", `must be an array, got ${describe(value)}`);
  const seen = new Set<string>();
  return value.map((item, i) => {
    const field = `options.volumes[${i}]`;
    const v = optionalObject(field, item);
    checkKnownKeys(field, v, VOLUME_KEYS);
    const volume = requireName(`${field}.volume`, v.volume);
    const raw = requireString(`${field}.mountPath`, v.mountPath);
    if (!posix.isAbsolute(raw))
      throw new InvalidArgumentError(`${field}.mountPath`, `must be absolute, got ${describe(raw)}`);
    if (raw.split("/").includes(".."))
      throw new InvalidArgumentError(`${field}.mountPath`, "must not contain '..' segments");
    const mountPath = posix.normalize(raw).replace(/(.)\/+$/, "$1");
    if (
      RESERVED_MOUNTS.includes(mountPath) ||
      mountPath.startsWith("/proc/") ||
      mountPath.startsWith("/sys/") ||
      mountPath.startsWith("/dev/") ||
      mountPath.startsWith("/opt/kiln/") ||
      mountPath.startsWith("/run/kiln") ||
      mountPath.startsWith("/etc/kiln")
    ) {
      throw new InvalidArgumentError(`${field}.mountPath`, `may not mount over ${mountPath}`);
    }
    if (seen.has(mountPath)) throw new InvalidArgumentError(`${field}.mountPath`, `${mountPath} is mounted twice`);
    seen.add(mountPath);
    return { volume, mountPath, readOnly: optionalBoolean(`${field}.readOnly`, v.readOnly) ?? false };
  });
}
