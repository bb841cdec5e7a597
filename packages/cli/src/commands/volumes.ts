/** volume create|ls|rm: named volumes that outlive sandboxes (mount with kiln create --volume). */
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { examples } from "../help.ts";
import { ago, formatLabels, printJson, renderTable } from "../output.ts";

export function registerVolumes(program: Command): void {
  const volume = program
    .command("volume")
    .description("Create, list and delete volumes")
    .addHelpText("after", examples("kiln volume create data", "kiln create --volume data:/data"));

  withCommonOptions(
    volume
      .command("create")
      .description("Create a volume; prints its name")
      .argument("<name>", "the volume's name")
      .addHelpText("after", examples("kiln volume create data && kiln create --volume data:/data")),
  ).action(async (name: string, flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const info = await kiln.volumes.create(name);
      if (flags.json) return printJson(info);
      process.stdout.write(`${info.name}\n`);
    });
  });

  withCommonOptions(
    volume.command("ls").alias("list").description("List volumes").addHelpText("after", examples("kiln volume ls")),
  ).action(async (flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const volumes = await kiln.volumes.list();
      if (flags.json) return printJson({ volumes });
      const rows = volumes.map((v) => [v.name, ago(v.createdAt), formatLabels(v.labels)]);
      process.stdout.write(`${renderTable(["NAME", "CREATED", "LABELS"], rows)}\n`);
    });
  });

  withCommonOptions(
    volume
      .command("rm")
      .alias("delete")
      .description("Delete volumes")
      .argument("<names...>", "volume names")
      .addHelpText("after", examples("kiln volume rm data")),
  ).action(async (names: string[], flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      for (const name of names) {
        await kiln.volumes.delete(name);
        if (!flags.json) process.stdout.write(`${name}\n`);
      }
      if (flags.json) printJson({ deleted: names });
    });
  });
}
