/** create, ls, info, start, stop, rm: a sandbox's lifecycle. */
import type { CreateSandboxOptions, Language, SandboxInfo } from "@kiln/core";
import { type Command, InvalidArgumentError, Option } from "commander";
import { type CommonOptions, collect, pairs, withCommonOptions, withKiln } from "../context.ts";
import { parseDuration } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { examples } from "../help.ts";
import { ago, formatLabels, printJson, renderPairs, renderTable, stateColor } from "../output.ts";

const LANGUAGES: Language[] = ["python", "javascript", "typescript"];

interface CreateFlags extends CommonOptions {
  name?: string;
  label?: string[];
  env?: string[];
  image?: string;
  snapshot?: string;
  language?: Language;
  cpus?: number;
  memory?: number;
  network?: string;
  volume?: string[];
  autoStop?: number;
  autoDelete?: number;
}

export function registerSandboxes(program: Command): void {
  withCommonOptions(
    program
      .command("create")
      .description("Create a sandbox and start it; prints its id")
      .option("--name <name>", "a unique name to reach it by")
      .option("-l, --label <key=value>", "a label (repeatable)", collect)
      .option("-e, --env <KEY=VALUE>", "an environment variable of every command in it (repeatable)", collect)
      .addOption(new Option("--image <image>", "the image to start from").conflicts("snapshot"))
      .option("--snapshot <name>", "restore a snapshot instead of an image")
      .addOption(new Option("--language <language>", "the default language of kiln run").choices(LANGUAGES))
      .option("--cpus <n>", "CPU cores (fractions allowed; default 1)", number("--cpus"))
      .option("--memory <mb>", "memory limit in MiB (default 1024)", number("--memory"))
      .option("--network <policy>", 'none (default), egress, or hosts it may reach: "pypi.org,github.com"')
      .option("--volume <name:/path[:ro]>", "mount a volume (repeatable)", collect)
      .option("--auto-stop <duration>", "stop after this long without activity (30s, 5m, 1h)", parseDuration)
      .option("--auto-delete <duration>", "delete after this long stopped", parseDuration)
      .addHelpText(
        "after",
        examples(
          "kiln create --name box --language python --memory 2048",
          "kiln create --network pypi.org,files.pythonhosted.org --auto-stop 30m",
          "ID=$(kiln create --label team=data)",
        ),
      ),
  ).action(async (flags: CreateFlags) => {
    const options = createOptions(flags);
    await withKiln(flags, async (kiln) => {
      const sandbox = await kiln.create(options);
      const info = await sandbox.info();
      if (flags.json) printJson(info);
      else process.stdout.write(`${sandbox.id}\n`);
    });
  });

  withCommonOptions(
    program
      .command("ls")
      .alias("list")
      .description("List sandboxes")
      .option("-l, --label <key=value>", "only sandboxes with this label (repeatable)", collect)
      .option("-q, --quiet", "print ids only")
      .option("--no-trunc", "print full ids")
      .addHelpText("after", examples("kiln ls", "kiln ls --label team=data --json", "kiln rm $(kiln ls -q)")),
  ).action(async (flags: CommonOptions & { label?: string[]; quiet?: boolean; trunc: boolean }) => {
    const labels = pairs(flags.label, "--label");
    await withKiln(flags, async (kiln) => {
      const sandboxes = await kiln.list(flags.label ? { labels } : undefined);
      if (flags.json) return printJson({ sandboxes });
      if (flags.quiet) return void process.stdout.write(sandboxes.map((s) => `${s.id}\n`).join(""));
      const rows = sandboxes.map((s) => [
        flags.trunc ? s.id.slice(0, 12) : s.id,
        s.name ?? "",
        stateColor(s.state),
        s.image,
        ago(s.createdAt),
        formatLabels(s.labels),
      ]);
      process.stdout.write(`${renderTable(["ID", "NAME", "STATE", "IMAGE", "CREATED", "LABELS"], rows)}\n`);
    });
  });

  withCommonOptions(
    program
      .command("info")
      .alias("inspect")
      .description("Show a sandbox")
      .argument("<id>", "sandbox id or name")
      .addHelpText("after", examples("kiln info box", "kiln info box --json | jq .state")),
  ).action(async (id: string, flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const info = await (await kiln.get(id)).info();
      if (flags.json) return printJson(info);
      process.stdout.write(`${renderInfo(info)}\n`);
    });
  });

  for (const [verb, description] of [
    ["start", "Start a stopped sandbox (its files are kept; interpreter state is not)"],
    ["stop", "Stop a sandbox (its files are kept)"],
  ] as const) {
    withCommonOptions(
      program
        .command(verb)
        .description(description)
        .argument("<id>", "sandbox id or name")
        .addHelpText("after", examples(`kiln ${verb} box`)),
    ).action(async (id: string, flags: CommonOptions) => {
      await withKiln(flags, async (kiln) => {
        const sandbox = await kiln.get(id);
        await sandbox[verb]();
        if (flags.json) printJson(await sandbox.info());
        else process.stdout.write(`${sandbox.id}\n`);
      });
    });
  }

  withCommonOptions(
    program
      .command("rm")
      .alias("delete")
      .description("Delete sandboxes (running ones too)")
      .argument("<ids...>", "sandbox ids or names")
      .addHelpText("after", examples("kiln rm box", "kiln rm $(kiln ls -q --label team=data)")),
  ).action(async (ids: string[], flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const deleted: string[] = [];
      for (const id of ids) {
        const sandbox = await kiln.get(id);
        await sandbox.delete();
        deleted.push(sandbox.id);
        if (!flags.json) process.stdout.write(`${sandbox.id}\n`);
      }
      if (flags.json) printJson({ deleted });
    });
  });
}

export function renderInfo(info: SandboxInfo): string {
  const extra = info as SandboxInfo & { language?: string; network?: unknown; resources?: Record<string, unknown> };
  const rows: [string, string][] = [
    ["id", info.id],
    ...(info.name ? [["name", info.name] as [string, string]] : []),
    ["state", stateColor(info.state)],
    ["image", info.image],
    ["created", `${info.createdAt} (${ago(info.createdAt)})`],
    ["labels", formatLabels(info.labels)],
  ];
  if (extra.language) rows.push(["language", extra.language]);
  if (extra.network !== undefined)
    rows.push(["network", typeof extra.network === "string" ? extra.network : JSON.stringify(extra.network)]);
  if (extra.resources)
    rows.push([
      "resources",
      Object.entries(extra.resources)
        .map(([k, v]) => `${k}=${v}`)
        .join(" "),
    ]);
  return renderPairs(rows);
}

function number(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${flag} takes a positive number.`);
    return n;
  };
}

export function parseNetwork(value: string): CreateSandboxOptions["network"] {
  if (value === "none" || value === "egress") return value;
  const allow = value
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
  if (allow.length === 0) throw new UsageError(`--network takes none, egress or a comma-separated host list`);
  return { allow };
}

function parseVolume(spec: string): NonNullable<CreateSandboxOptions["volumes"]>[number] {
  const [volume, mountPath, mode, ...rest] = spec.split(":");
  if (!volume || !mountPath || rest.length > 0 || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
    throw new UsageError(`--volume takes NAME:/path or NAME:/path:ro, got "${spec}"`);
  }
  return { volume, mountPath, ...(mode === "ro" ? { readOnly: true } : {}) };
}

function createOptions(flags: CreateFlags): CreateSandboxOptions {
  const options: CreateSandboxOptions = {};
  if (flags.name !== undefined) options.name = flags.name;
  if (flags.label) options.labels = pairs(flags.label, "--label");
  if (flags.env) options.env = pairs(flags.env, "--env");
  if (flags.image !== undefined) options.image = flags.image;
  if (flags.snapshot !== undefined) options.snapshot = flags.snapshot;
  if (flags.language !== undefined) options.language = flags.language;
  if (flags.cpus !== undefined || flags.memory !== undefined) {
    options.resources = {
      ...(flags.cpus === undefined ? {} : { cpus: flags.cpus }),
      ...(flags.memory === undefined ? {} : { memoryMb: flags.memory }),
    };
  }
  if (flags.network !== undefined) options.network = parseNetwork(flags.network);
  if (flags.volume) options.volumes = flags.volume.map(parseVolume);
  if (flags.autoStop !== undefined) options.autoStopMs = flags.autoStop;
  if (flags.autoDelete !== undefined) options.autoDeleteMs = flags.autoDelete;
  return options;
}
