/** run ID FILE|-: a file of code through runCode; results printed, images saved beside it. */
import { readFile, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { text } from "node:stream/consumers";
import type { Execution, Language, Result } from "@kiln/core";
import { type Command, Option } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { parseDuration } from "../duration.ts";
import { EXIT_FAILURE, EXIT_INTERRUPTED, ExitCode } from "../errors.ts";
import { examples } from "../help.ts";
import { err, note, printJson } from "../output.ts";

const NO_TIMEOUT_MS = 24 * 60 * 60 * 1000;

const EXTENSIONS: Record<string, Language> = {
  ".py": "python",
  ".js": "javascript",
  ".mjs": "javascript",
  ".cjs": "javascript",
  ".ts": "typescript",
  ".mts": "typescript",
};

interface RunFlags extends CommonOptions {
  language?: Language;
  context?: string;
  timeout?: number;
  out?: string;
}

export function registerRun(program: Command): void {
  withCommonOptions(
    program
      .command("run")
      .description("Run a file of code in a sandbox's interpreter; prints results, saves images (charts) as files")
      .argument("<id>", "sandbox id or name")
      .argument("<file>", "the code: a .py, .js or .ts file, or - for stdin")
      .addOption(
        new Option(
          "--language <language>",
          "override the language (default: from the extension, else the sandbox's)",
        ).choices(Object.values(EXTENSIONS).filter((v, i, a) => a.indexOf(v) === i)),
      )
      .option("--context <name>", "a named interpreter state (default: the language's default context)")
      .option("--timeout <duration>", "stop the code after this long (30s, 5m, 1h)", parseDuration)
      .option("--out <dir>", "where images go (default: beside FILE; the current directory for -)")
      .addHelpText(
        "after",
        `${examples(
          "kiln run box analysis.py                # a chart becomes analysis-1.png",
          "echo 'print(6*7)' | kiln run box -",
          "kiln run box plot.py --out charts/ --json",
        )}

Images are saved as <stem>-<n>.png|jpg|svg (the stem of FILE, or "kiln" for -), each path on stderr.
Exit code 1 when the code raised an error or did not finish ok.`,
      ),
  ).action(async (id: string, file: string, flags: RunFlags) => {
    const code = file === "-" ? await text(process.stdin) : await readSource(file);
    const language = flags.language ?? EXTENSIONS[extname(file).toLowerCase()];
    const outDir = resolve(flags.out ?? (file === "-" ? "." : dirname(file)));
    const stem = file === "-" ? "kiln" : basename(file, extname(file));
    const controller = new AbortController();
    const abort = () => controller.abort();
    process.once("SIGINT", abort);
    let execution: Execution;
    try {
      execution = await withKiln(flags, async (kiln) => {
        const sandbox = await kiln.get(id);
        return sandbox.runCode(code, {
          timeoutMs: flags.timeout ?? NO_TIMEOUT_MS,
          signal: controller.signal,
          ...(language ? { language } : {}),
          ...(flags.context ? { context: flags.context } : {}),
          ...(flags.json
            ? {}
            : {
                onStdout: (chunk: string) => void process.stdout.write(chunk),
                onStderr: (chunk: string) => void process.stderr.write(chunk),
              }),
        });
      });
    } catch (error) {
      if (controller.signal.aborted) throw new ExitCode(EXIT_INTERRUPTED, "interrupted");
      throw error;
    } finally {
      process.off("SIGINT", abort);
    }
    const saved = await saveImages(execution.results, outDir, stem);
    if (flags.json) printJson(execution);
    else
      for (const result of execution.results) {
        const shown = textOf(result);
        if (shown !== undefined && !hasImage(result)) process.stdout.write(`${shown}\n`);
      }
    for (const path of saved) note(`saved ${path}`);
    if (execution.error) {
      if (!flags.json)
        process.stderr.write(
          `${err.red(execution.error.traceback || `${execution.error.name}: ${execution.error.value}`)}\n`,
        );
      throw new ExitCode(EXIT_FAILURE, `the code raised ${execution.error.name}`);
    }
    if (execution.status !== "ok") throw new ExitCode(EXIT_FAILURE, `the code ended with status ${execution.status}`);
  });
}

async function readSource(file: string): Promise<string> {
  return readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : (error.code ?? error.message)}`);
  });
}

function hasImage(result: Result): boolean {
  return Boolean(result.png || result.jpeg || result.svg);
}

/** What a notebook would print for a result without an image. */
function textOf(result: Result): string | undefined {
  if (result.text !== undefined) return result.text;
  if (result.markdown !== undefined) return result.markdown;
  if (result.json !== undefined) return JSON.stringify(result.json, null, 2);
  return result.html;
}

/** <stem>-<n>.<ext>, n counting images from 1; several formats of one image share its n. */
export async function saveImages(results: Result[], dir: string, stem: string): Promise<string[]> {
  const saved: string[] = [];
  let n = 0;
  for (const result of results) {
    if (!hasImage(result)) continue;
    n++;
    const files: [string, string | Buffer][] = [];
    if (result.png) files.push(["png", Buffer.from(result.png, "base64")]);
    if (result.jpeg) files.push(["jpg", Buffer.from(result.jpeg, "base64")]);
    if (result.svg) files.push(["svg", result.svg]);
    for (const [ext, data] of files) {
      const path = join(dir, `${stem}-${n}.${ext}`);
      await writeFile(path, data).catch((error: NodeJS.ErrnoException) => {
        throw new Error(`cannot save ${path}: ${error.code ?? error.message}`);
      });
      saved.push(path);
    }
  }
  return saved;
}
