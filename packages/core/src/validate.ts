/**
 * Validation at the edge: every public entry point checks its arguments here and throws
 * InvalidArgumentError naming the field, before anything reaches the engine or a sandbox.
 */
import { InvalidArgumentError } from "./errors.ts";

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function optionalObject(field: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new InvalidArgumentError(field, `must be an object, got ${describe(value)}`);
  return value;
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" && Number.isNaN(value)) return "NaN";
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

export function requireString(field: string, value: unknown, options: { allowEmpty?: boolean } = {}): string {
  if (typeof value !== "string") throw new InvalidArgumentError(field, `must be a string, got ${describe(value)}`);
  if (!options.allowEmpty && value.length === 0) throw new InvalidArgumentError(field, "must not be empty");
  if (value.includes("\0")) throw new InvalidArgumentError(field, "must not contain NUL bytes");
  return value;
}

export function optionalString(field: string, value: unknown): string | undefined {
  return value === undefined ? undefined : requireString(field, value);
}

/** A finite number within [min, max]; integers only unless `integer: false`. */
export function optionalNumber(
  field: string,
  value: unknown,
  range: { min: number; max: number; integer?: boolean },
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InvalidArgumentError(field, `must be a finite number, got ${describe(value)}`);
  }
  if ((range.integer ?? true) && !Number.isInteger(value)) {
    throw new InvalidArgumentError(field, `must be a whole number, got ${value}`);
  }
  if (value < range.min || value > range.max) {
    throw new InvalidArgumentError(field, `must be between ${range.min} and ${range.max}, got ${value}`);
  }
  return value;
}

export function optionalBoolean(field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new InvalidArgumentError(field, `must be a boolean, got ${describe(value)}`);
  return value;
}

export function optionalFunction<T extends (...args: never[]) => unknown>(
  field: string,
  value: unknown,
): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw new InvalidArgumentError(field, `must be a function, got ${describe(value)}`);
  return value as T;
}

export function optionalSignal(field: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal))
    throw new InvalidArgumentError(field, `must be an AbortSignal, got ${describe(value)}`);
  return value;
}

export function optionalOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(
      field,
      `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${describe(value)}`,
    );
  }
  return value as T;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function optionalEnv(field: string, value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const env = optionalObject(field, value);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new InvalidArgumentError(`${field}.${k}`, "is not a valid environment variable name");
    out[k] = requireString(`${field}.${k}`, v, { allowEmpty: true });
  }
  return out;
}

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._\-/]{0,127}$/;

export function optionalLabels(field: string, value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const labels = optionalObject(field, value);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) {
      throw new InvalidArgumentError(
        `${field}.${k}`,
        "label keys are 1-128 characters of letters, digits, '.', '_', '-', '/'",
      );
    }
    const s = requireString(`${field}.${k}`, v, { allowEmpty: true });
    if (s.length > 1024) throw new InvalidArgumentError(`${field}.${k}`, "label values are at most 1024 characters");
    out[k] = s;
  }
  return out;
}

/** Names of sandboxes, snapshots and volumes: what the engine accepts in a name, kept short. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function requireName(field: string, value: unknown): string {
  const name = requireString(field, value);
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      field,
      `must be 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit; got ${describe(value)}`,
    );
  }
  return name;
}

/**
 * Refuses keys outside `known` (a misspelt or misplaced option such as `resources: { memory: 512 }`
 * would otherwise be silently ignored), naming the field and what it accepts.
 */
export function checkKnownKeys(field: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const path = field === "" ? key : `${field}.${key}`;
      throw new InvalidArgumentError(path, `unknown option; ${field || "options"} accepts ${known.join(", ")}`);
    }
  }
}
