import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { configFile, readLogin, saveLogin } from "./config.ts";
import { pairs, resolveTarget } from "./context.ts";
import { UsageError } from "./errors.ts";

let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  env = { XDG_CONFIG_HOME: await mkdtemp(join(tmpdir(), "kiln-cli-unit-")) };
});

describe("which Kiln", () => {
  it("is local when nothing names a server", async () => {
    expect(await resolveTarget({}, env)).toEqual({ mode: "local" });
  });

  it("takes --url with --api-key (commander folds KILN_URL/KILN_API_KEY into these)", async () => {
    expect(await resolveTarget({ url: "http://h:7420/", apiKey: "k" }, env)).toEqual({
      mode: "remote",
      url: "http://h:7420",
      apiKey: "k",
      source: "flag",
    });
    expect(await resolveTarget({ url: "http://h:1", apiKey: "k" }, { ...env, KILN_URL: "http://h:1" })).toMatchObject({
      source: "env",
    });
  });

  it("a URL without a key, or a key without a URL, is a usage error", async () => {
    await expect(resolveTarget({ url: "http://h:7420" }, env)).rejects.toBeInstanceOf(UsageError);
    await expect(resolveTarget({ apiKey: "k" }, env)).rejects.toThrow(/--url/);
    await expect(resolveTarget({ url: "ftp://h", apiKey: "k" }, env)).rejects.toThrow(/http/);
  });

  it("uses kiln login's server below flags and env, and --local over everything", async () => {
    await saveLogin({ url: "http://saved:7420", apiKey: "saved-key" }, env);
    expect(await resolveTarget({}, env)).toEqual({
      mode: "remote",
      url: "http://saved:7420",
      apiKey: "saved-key",
      source: "login",
    });
    expect(await resolveTarget({ url: "http://flag:1", apiKey: "k" }, env)).toMatchObject({ url: "http://flag:1" });
    expect(await resolveTarget({ local: true, url: "http://flag:1", apiKey: "k" }, env)).toEqual({ mode: "local" });
  });
});

describe("kiln login's file", () => {
  it("lives under XDG_CONFIG_HOME with mode 0600", async () => {
    const file = await saveLogin({ url: "http://h", apiKey: "k" }, env);
    expect(file).toBe(configFile(env));
    expect(file.startsWith(env.XDG_CONFIG_HOME as string)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(file, ".."))).mode & 0o777).toBe(0o700);
    expect(await readLogin(env)).toEqual({ url: "http://h", apiKey: "k" });
  });

  it("defaults to ~/.config/kiln", () => {
    expect(configFile({ HOME: "/home/u" })).toMatch(/\.config\/kiln\/config\.json$/);
  });
});

describe("pairs", () => {
  it("reads KEY=VALUE, values may hold =", () => {
    expect(pairs(["a=1", "b=x=y"], "--label")).toEqual({ a: "1", b: "x=y" });
    expect(() => pairs(["novalue"], "--label")).toThrow(/KEY=VALUE/);
    expect(() => pairs(["=v"], "--label")).toThrow(/KEY=VALUE/);
  });
});
