/** keys create|ls|revoke: API keys of a Kiln server (scoped, optionally to one sandbox, optionally expiring). */
import { isScope, SCOPE_INFO, SCOPES, type Scope } from "@kiln/core/vocabulary";
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions } from "../context.ts";
import { parseDuration } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { examples } from "../help.ts";
import { ago, note, printJson, renderTable } from "../output.ts";
import { call, serverTarget } from "../server-api.ts";

interface KeyInfo {
  id: string;
  name: string;
  orgId: string;
  prefix: string;
  scopes: string[];
  sandboxId?: string;
  expiresAt?: string;
  createdAt: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

interface CreateFlags extends CommonOptions {
  scope?: Scope[];
  org?: string;
  sandbox?: string;
  expires?: string;
}

/** --scope (repeatable): one of the server's scopes, checked before anything is sent. */
export function scopeOption(value: string, previous: Scope[] = []): Scope[] {
  if (!isScope(value)) throw new UsageError(`--scope: "${value}" is not a scope; one of: ${SCOPES.join(", ")}`);
  return [...previous, value];
}

/** The scopes, one a line with what each allows, for `kiln keys create --help`. */
export function scopesHelp(): string {
  const width = Math.max(...SCOPES.map((s) => s.length));
  return `\nScopes:\n${SCOPES.map((s) => `  ${s.padEnd(width)}  ${SCOPE_INFO[s]}`).join("\n")}`;
}

/** --expires: a duration from now (30d, 12h) or an ISO time. */
function expiry(text: string): string {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (Number.isNaN(at)) throw new UsageError(`--expires: "${text}" is not a time`);
    return new Date(at).toISOString();
  }
  const days = /^(\d+)d$/.exec(text);
  const ms = days ? Number(days[1]) * 86_400_000 : parseDuration(text);
  return new Date(Date.now() + ms).toISOString();
}

export function registerKeys(program: Command): void {
  const keys = program
    .command("keys")
    .description("Create, list and revoke API keys of a Kiln server")
    .addHelpText(
      "after",
      examples(
        "kiln keys create ci --scope sandboxes:write --scope sandboxes:exec --expires 30d",
        "kiln keys ls",
        "kiln keys revoke key_3f9a…",
      ),
    );

  withCommonOptions(
    keys
      .command("create")
      .description("Make a key; prints it once (only its hash is kept)")
      .argument("<name>", "a name to tell the key apart")
      .option("--scope <scope>", "a scope the key holds (repeatable; the list is below)", scopeOption)
      .option("--org <id>", "the key's organisation (another than your key's needs orgs:admin)")
      .option("--sandbox <id>", "restrict the key to this one sandbox")
      .option("--expires <when>", "a duration from now (30d, 12h, 90m) or an ISO time")
      .addHelpText("after", scopesHelp())
      .addHelpText(
        "after",
        examples(
          "kiln keys create reader --scope sandboxes:read",
          "kiln keys create agent --scope sandboxes:exec --scope files:write --sandbox box1 --expires 12h",
          'export KILN_API_KEY=$(kiln keys create ci --scope "*")',
        ),
      ),
  ).action(async (name: string, flags: CreateFlags) => {
    const target = await serverTarget(flags, "keys create");
    const made = await call<KeyInfo & { key: string }>(target, "POST", "/v1/keys", {
      name,
      scopes: flags.scope ?? [],
      ...(flags.org === undefined ? {} : { orgId: flags.org }),
      ...(flags.sandbox === undefined ? {} : { sandboxId: flags.sandbox }),
      ...(flags.expires === undefined ? {} : { expiresAt: expiry(flags.expires) }),
    });
    if (flags.json) return printJson(made);
    process.stdout.write(`${made.key}\n`);
    note(`key ${made.id} (${made.scopes.join(" ") || "no scopes"}): shown once, keep it now`);
  });

  withCommonOptions(
    keys
      .command("ls")
      .alias("list")
      .description("List keys (never their secrets)")
      .option("--org <id>", "another organisation's keys (orgs:admin)")
      .addHelpText("after", examples("kiln keys ls", "kiln keys ls --json | jq '.keys[].id'")),
  ).action(async (flags: CommonOptions & { org?: string }) => {
    const target = await serverTarget(flags, "keys ls");
    const query = flags.org === undefined ? "" : `?orgId=${encodeURIComponent(flags.org)}`;
    const { keys: list } = await call<{ keys: KeyInfo[] }>(target, "GET", `/v1/keys${query}`);
    if (flags.json) return printJson({ keys: list });
    const rows = list.map((k) => [
      k.id,
      k.name,
      k.prefix,
      k.scopes.join(" "),
      k.sandboxId?.slice(0, 12) ?? "",
      k.revokedAt ? "revoked" : k.expiresAt && Date.parse(k.expiresAt) <= Date.now() ? "expired" : "active",
      k.lastUsedAt ? ago(k.lastUsedAt) : "never",
    ]);
    process.stdout.write(`${renderTable(["ID", "NAME", "PREFIX", "SCOPES", "SANDBOX", "STATE", "LAST USED"], rows)}\n`);
  });

  withCommonOptions(
    keys
      .command("revoke")
      .alias("rm")
      .description("Revoke keys: their next request is refused")
      .argument("<ids...>", "key ids (kiln keys ls)")
      .addHelpText("after", examples("kiln keys revoke key_3f9a…")),
  ).action(async (ids: string[], flags: CommonOptions) => {
    const target = await serverTarget(flags, "keys revoke");
    for (const id of ids) {
      await call(target, "DELETE", `/v1/keys/${encodeURIComponent(id)}`);
      if (!flags.json) process.stdout.write(`${id}\n`);
    }
    if (flags.json) printJson({ revoked: ids });
  });
}
