/** snapshot create|ls|rm: a sandbox's filesystem (and Python variables) saved as an image. */
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { examples } from "../help.ts";
import { ago, formatBytes, note, printJson, renderTable } from "../output.ts";

export function registerSnapshots(program: Command): void {
  const snapshot = program
    .command("snapshot")
    .description("Save sandboxes as snapshots, list and delete them")
    .addHelpText("after", examples("kiln snapshot create box base", "kiln create --snapshot base"));

  withCommonOptions(
    snapshot
      .command("create")
      .description("Snapshot a sandbox: its files and its Python variables; prints the name")
      .argument("<id>", "sandbox id or name")
      .argument("<name>", "the snapshot's name")
      .addHelpText("after", examples("kiln snapshot create box base && kiln create --snapshot base")),
  ).action(async (id: string, name: string, flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const info = await (await kiln.get(id)).snapshot(name);
      if (flags.json) return printJson(info);
      process.stdout.write(`${info.name}\n`);
      for (const [context, state] of Object.entries(info.state ?? {})) {
        for (const failed of state.failed) note(`${context}: variable ${failed.name} not saved: ${failed.reason}`);
        if (state.busy) note(`${context}: busy, its variables were not saved`);
      }
    });
  });

  withCommonOptions(
    snapshot
      .command("ls")
      .alias("list")
      .description("List snapshots")
      .addHelpText("after", examples("kiln snapshot ls", "kiln snapshot ls --json")),
  ).action(async (flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const snapshots = await kiln.snapshots.list();
      if (flags.json) return printJson({ snapshots });
      const rows = snapshots.map((s) => [
        s.name,
        formatBytes(s.sizeBytes),
        ago(s.createdAt),
        s.sourceSandboxId?.slice(0, 12) ?? "",
      ]);
      process.stdout.write(`${renderTable(["NAME", "SIZE", "CREATED", "FROM"], rows)}\n`);
    });
  });

  withCommonOptions(
    snapshot
      .command("rm")
      .alias("delete")
      .description("Delete snapshots")
      .argument("<names...>", "snapshot names")
      .addHelpText("after", examples("kiln snapshot rm base")),
  ).action(async (names: string[], flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      for (const name of names) {
        await kiln.snapshots.delete(name);
        if (!flags.json) process.stdout.write(`${name}\n`);
      }
      if (flags.json) printJson({ deleted: names });
    });
  });
}
