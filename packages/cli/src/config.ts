/**
 * What `kiln login` saves: the server's URL and an API key, in the user's config directory
 * ($XDG_CONFIG_HOME/kiln/config.json, else ~/.config/kiln/config.json), readable by the user alone.
 */
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export interface SavedLogin {
  url: string;
  apiKey: string;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== "" ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "kiln");
}

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), "config.json");
}

export async function readLogin(env: NodeJS.ProcessEnv = process.env): Promise<SavedLogin | undefined> {
  const text = await readFile(configFile(env), "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new Error(`cannot read ${configFile(env)}: ${err.code ?? err.message}`);
  });
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${configFile(env)} is not JSON: run kiln login again`);
  }
  const { url, apiKey } = (parsed ?? {}) as Partial<SavedLogin>;
  if (typeof url !== "string" || typeof apiKey !== "string") return undefined;
  return { url, apiKey };
}

/** Writes with mode 0600 in a 0700 directory; an existing file is tightened to 0600 too. */
export async function saveLogin(login: SavedLogin, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  await mkdir(configDir(env), { recursive: true, mode: 0o700 });
  const file = configFile(env);
  await writeFile(file, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

export async function forgetLogin(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = configFile(env);
  const existed = await readFile(file).then(
    () => true,
    () => false,
  );
  await rm(file, { force: true });
  return existed;
}
