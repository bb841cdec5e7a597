/** orgs create|ls|quotas: organisations of a Kiln server (keys of the default organisation with orgs:admin). */
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions } from "../context.ts";
import { examples } from "../help.ts";
import { ago, printJson, renderTable } from "../output.ts";
import { call, count, serverTarget } from "../server-api.ts";

interface Org {
  id: string;
  name: string;
  quotas: Record<string, number>;
  createdAt: string;
}

interface QuotaFlags extends CommonOptions {
  maxSandboxes?: number;
  maxCpus?: number;
  maxMemory?: number;
  createsPerMinute?: number;
}

function quotaOptions(command: Command): Command {
  return command
    .option("--max-sandboxes <n>", "sandboxes that may exist (running or stopped)", count("--max-sandboxes"))
    .option("--max-cpus <n>", "CPUs of running sandboxes, together", count("--max-cpus"))
    .option("--max-memory <mb>", "memory of running sandboxes together, in MB", count("--max-memory"))
    .option("--creates-per-minute <n>", "sandbox creates a minute", count("--creates-per-minute"));
}

function quotas(flags: QuotaFlags): Record<string, number> {
  const q: Record<string, number | undefined> = {
    maxSandboxes: flags.maxSandboxes,
    maxCpus: flags.maxCpus,
    maxMemoryMb: flags.maxMemory,
    createsPerMinute: flags.createsPerMinute,
  };
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as Record<string, number>;
}

const formatQuotas = (q: Record<string, number>) =>
  Object.entries(q)
    .map(([k, v]) => `${k}=${v}`)
    .join(",") || "none";

export function registerOrgs(program: Command): void {
  const orgs = program
    .command("orgs")
    .description("Create and list organisations of a Kiln server (orgs:admin)")
    .addHelpText(
      "after",
      examples(
        "kiln orgs create acme --max-sandboxes 10 --max-cpus 8",
        "kiln keys create acme-ci --org org_… --scope '*'",
      ),
    );

  withCommonOptions(
    quotaOptions(
      orgs
        .command("create")
        .description("Make an organisation; prints its id")
        .argument("<name>", "lowercase letters, digits and -")
        .addHelpText("after", examples("kiln orgs create acme --max-sandboxes 10 --creates-per-minute 30")),
    ),
  ).action(async (name: string, flags: QuotaFlags) => {
    const target = await serverTarget(flags, "orgs create");
    const q = quotas(flags);
    const org = await call<Org>(target, "POST", "/v1/orgs", {
      name,
      ...(Object.keys(q).length > 0 ? { quotas: q } : {}),
    });
    if (flags.json) return printJson(org);
    process.stdout.write(`${org.id}\n`);
  });

  withCommonOptions(
    orgs
      .command("ls")
      .alias("list")
      .description("List organisations and their quotas")
      .addHelpText("after", examples("kiln orgs ls")),
  ).action(async (flags: CommonOptions) => {
    const target = await serverTarget(flags, "orgs ls");
    const { orgs: list } = await call<{ orgs: Org[] }>(target, "GET", "/v1/orgs");
    if (flags.json) return printJson({ orgs: list });
    const rows = list.map((o) => [o.id, o.name, formatQuotas(o.quotas), ago(o.createdAt)]);
    process.stdout.write(`${renderTable(["ID", "NAME", "QUOTAS", "CREATED"], rows)}\n`);
  });

  withCommonOptions(
    quotaOptions(
      orgs
        .command("quotas")
        .description("Change an organisation's quotas (the given ones; the others stay)")
        .argument("<id>", "the organisation's id")
        .addHelpText("after", examples("kiln orgs quotas org_… --max-sandboxes 20")),
    ),
  ).action(async (id: string, flags: QuotaFlags) => {
    const target = await serverTarget(flags, "orgs quotas");
    const org = await call<Org>(target, "PUT", `/v1/orgs/${encodeURIComponent(id)}/quotas`, quotas(flags));
    if (flags.json) return printJson(org);
    process.stdout.write(`${org.id} ${formatQuotas(org.quotas)}\n`);
  });
}
