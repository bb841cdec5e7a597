/**
 * Which Kiln a command talks to, and the options every command shares. Local (this machine's
 * Docker engine through @kiln/core) by default; remote (a Kiln server over HTTP) with --url /
 * KILN_URL / a saved `kiln login`, each with its API key. --local forces local.
 */
import type { Kiln } from "@kiln/core";
import { type Command, Option } from "commander";
import { readLogin } from "./config.ts";
import { UsageError } from "./errors.ts";

export interface CommonOptions {
  json?: boolean;
  url?: string;
  apiKey?: string;
  local?: boolean;
}

export type Target =
  | { mode: "local" }
  | { mode: "remote"; url: string; apiKey: string; source: "flag" | "env" | "login" };

/** --json, --url, --api-key, --local on a command (each command shows them in its --help). */
export function withCommonOptions(command: Command, { remote = true } = {}): Command {
  command.option("--json", "print machine-readable JSON on stdout (the HTTP route's body)");
  if (remote) {
    command
      .addOption(new Option("--url <url>", "a Kiln server (over KILN_URL, over kiln login)").env("KILN_URL"))
      .addOption(new Option("--api-key <key>", "the server's API key").env("KILN_API_KEY"))
      .option("--local", "use this machine's Docker engine even when a server is configured");
  }
  return command;
}

/** --url over KILN_URL over `kiln login`; commander has already folded the env into the flags. */
export async function resolveTarget(options: CommonOptions, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  if (options.local) return { mode: "local" };
  const fromFlagOrEnv = options.url !== undefined && options.url !== "";
  if (fromFlagOrEnv) {
    const url = checkUrl(options.url as string);
    if (!options.apiKey) {
      throw new UsageError(`a server URL needs an API key: pass --api-key or set KILN_API_KEY (or run kiln login)`);
    }
    return { mode: "remote", url, apiKey: options.apiKey, source: env.KILN_URL === options.url ? "env" : "flag" };
  }
  const saved = await readLogin(env);
  if (saved) return { mode: "remote", url: saved.url, apiKey: options.apiKey || saved.apiKey, source: "login" };
  if (options.apiKey && env.KILN_API_KEY !== options.apiKey) {
    throw new UsageError("--api-key needs a server: pass --url too (or set KILN_URL)");
  }
  return { mode: "local" };
}

export function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL: use e.g. http://127.0.0.1:7420`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`"${text}" is not an http(s) URL`);
  }
  return text.replace(/\/+$/, "");
}

/** A Kiln for the target. Remote: the HTTP client in @kiln/core, the same Kiln API over server.md's routes. */
export async function connect(target: Target): Promise<Kiln> {
  // Loaded on first use: commands that need no Kiln start without it.
  const { Kiln } = await import("@kiln/core");
  // `pool: false` keeps core's Kiln in this process even when KILN_URL is set (core reads it
  // only when the options ask for nothing local): --local must mean local.
  if (target.mode === "local") return new Kiln({ pool: false });
  return new Kiln({ url: target.url, apiKey: target.apiKey });
}

/** Runs fn with a Kiln for the command's options and closes it afterwards (the pool, connections). */
export async function withKiln<T>(options: CommonOptions, fn: (kiln: Kiln, target: Target) => Promise<T>): Promise<T> {
  const target = await resolveTarget(options);
  const kiln = await connect(target);
  try {
    return await fn(kiln, target);
  } finally {
    await kiln.close().catch(() => {});
  }
}

/** "k=v" pairs of a repeatable flag into a record; a pair without "=" is a usage error. */
export function pairs(values: string[] | undefined, flag: string): Record<string, string> {
  const record: Record<string, string> = {};
  for (const item of values ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got "${item}"`);
    record[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return record;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
