/**
 * Calls to the routes only a Kiln server has (keys, organisations, audit): plain HTTP with the
 * target's key; an error body becomes one error line (`<message> (<CODE>)`).
 */
import { type CommonOptions, resolveTarget } from "./context.ts";
import { UsageError } from "./errors.ts";

export interface ServerTarget {
  url: string;
  apiKey: string;
}

export async function serverTarget(flags: CommonOptions, command: string): Promise<ServerTarget> {
  const target = await resolveTarget(flags);
  if (target.mode === "local") {
    throw new UsageError(
      `kiln ${command} talks to a Kiln server: pass --url and --api-key (or set KILN_URL and KILN_API_KEY, or run kiln login)`,
    );
  }
  return { url: target.url, apiKey: target.apiKey };
}

export async function call<T>(target: ServerTarget, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${target.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new Error(`cannot reach ${target.url}: ${(error as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new Error(e?.message ? `${e.message} (${e.code})` : `${method} ${path} answered HTTP ${res.status}`);
  }
  return parsed as T;
}

/** A whole number flag. */
export function count(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new UsageError(`${flag} takes a whole number, got "${value}"`);
    return Number(value);
  };
}
