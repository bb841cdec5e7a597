/** image build|ls|rm: custom images (kiln.images.build/list/delete). */
import { readFile } from "node:fs/promises";
import type { ImageSpec } from "@kiln/core";
import { type Command, InvalidArgumentError } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { examples } from "../help.ts";
import { ago, formatBytes, note, printJson, renderTable } from "../output.ts";

interface BuildFlags extends CommonOptions {
  file?: string;
  dockerfile?: string;
  context?: string;
  name?: string;
}

export function registerImages(program: Command): void {
  const image = program
    .command("image")
    .description("Build custom images (your packages on top of Kiln's runtime), list and delete them")
    .addHelpText("after", examples("kiln image build -f kiln-image.json", "kiln create --image ds"));

  withCommonOptions(
    image
      .command("build")
      .description("Build an image from a spec file (JSON ImageSpec) or a Dockerfile; prints name and tag")
      .option("-f, --file <path>", "a JSON ImageSpec: { name, from?, apt?, pip?, npm?, run?, files?, env?, workdir? }")
      .option("--dockerfile <path>", "build from a Dockerfile instead (FROM a Kiln image)")
      .option("--context <dir>", "the Dockerfile's build context (default: the current directory)")
      .option("--name <name>", "the image's name (overrides the spec file's; required with --dockerfile)")
      .addHelpText(
        "after",
        examples(
          `echo '{"name":"ds","apt":["jq"],"pip":["scikit-learn"]}' > kiln-image.json && kiln image build -f kiln-image.json`,
          "kiln image build --name web --dockerfile ./Dockerfile --context .",
        ),
      ),
  ).action(async (flags: BuildFlags) => {
    let spec: ImageSpec | { name: string; dockerfile: string; context: string };
    if (flags.dockerfile !== undefined) {
      if (flags.file !== undefined) throw new InvalidArgumentError("give either --file or --dockerfile, not both.");
      if (flags.name === undefined) throw new InvalidArgumentError("--dockerfile needs --name.");
      spec = { name: flags.name, dockerfile: flags.dockerfile, context: flags.context ?? "." };
    } else {
      if (flags.file === undefined) throw new InvalidArgumentError("give --file SPEC.json or --dockerfile PATH.");
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(flags.file, "utf8"));
      } catch (e) {
        throw new InvalidArgumentError(`cannot read ${flags.file} as JSON: ${(e as Error).message}`);
      }
      spec = { ...(parsed as ImageSpec), ...(flags.name === undefined ? {} : { name: flags.name }) };
    }
    await withKiln(flags, async (kiln) => {
      const built = await kiln.images.build(spec, {
        onProgress: (e) => {
          if (!flags.json) note(`[${e.phase}] ${e.message}`);
        },
      });
      if (flags.json) return printJson(built);
      process.stdout.write(`${built.name} ${built.tag}\n`);
    });
  });

  withCommonOptions(
    image
      .command("ls")
      .alias("list")
      .description("List custom images")
      .addHelpText("after", examples("kiln image ls", "kiln image ls --json")),
  ).action(async (flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      const images = await kiln.images.list();
      if (flags.json) return printJson({ images });
      const rows = images.map((i) => [i.name, i.tag, formatBytes(i.sizeBytes), ago(i.createdAt)]);
      process.stdout.write(`${renderTable(["NAME", "TAG", "SIZE", "CREATED"], rows)}\n`);
    });
  });

  withCommonOptions(
    image
      .command("rm")
      .alias("delete")
      .description("Delete custom images")
      .argument("<names...>", "image names")
      .addHelpText("after", examples("kiln image rm ds")),
  ).action(async (names: string[], flags: CommonOptions) => {
    await withKiln(flags, async (kiln) => {
      for (const name of names) {
        await kiln.images.delete(name);
        if (!flags.json) process.stdout.write(`${name}\n`);
      }
      if (flags.json) printJson({ deleted: names });
    });
  });
}
