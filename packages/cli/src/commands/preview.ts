/**
 * preview ID PORT: a signed, expiring URL for a server listening on PORT in the sandbox. On a
 * Kiln server the URL is the server's and kiln exits; in local mode the proxy behind the URL
 * lives in this process, so kiln serves it until Ctrl-C (or the URL expires), as
 * `kubectl port-forward` does.
 */
import { type Command, InvalidArgumentError } from "commander";
import { type CommonOptions, withCommonOptions, withKiln } from "../context.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import { examples } from "../help.ts";
import { note, printJson } from "../output.ts";

/** The longest a preview URL lives (core's and the server's limit), and the shortest. */
const MAX_EXPIRES_MS = 30 * 24 * 60 * 60 * 1000;
const MIN_EXPIRES_MS = 1_000;

interface PreviewFlags extends CommonOptions {
  expires?: number;
}

export function parsePort(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > 65_535) {
    throw new InvalidArgumentError(`"${text}" is not a port: use a number from 1 to 65535.`);
  }
  return Number(text);
}

function parseExpires(text: string): number {
  const ms = parseDuration(text);
  if (ms < MIN_EXPIRES_MS || ms > MAX_EXPIRES_MS) {
    throw new InvalidArgumentError(`"${text}" is out of range: a preview URL lives from 1s to 30d.`);
  }
  return ms;
}

export function registerPreview(program: Command): void {
  withCommonOptions(
    program
      .command("preview")
      .description("Print a signed URL that opens a server listening on PORT in the sandbox")
      .argument("<id>", "sandbox id or name")
      .argument("<port>", "the port the server listens on in the sandbox (1-65535)", parsePort)
      .option("--expires <duration>", "how long the URL works (1s to 30d; default 1h)", parseExpires)
      .addHelpText(
        "after",
        `${examples(
          "kiln exec -d box -- python3 -m http.server 8000 && kiln preview box 8000",
          "kiln preview --expires 24h box 3000 --json | jq -r .url",
        )}

Anyone with the URL can open that port until it expires (it carries its token). On a Kiln server
kiln prints the URL and exits. In local mode the URL is served by kiln itself on 127.0.0.1: kiln
prints it and keeps serving until Ctrl-C or until the URL expires.`,
      ),
  ).action(async (id: string, port: number, flags: PreviewFlags) => {
    await withKiln(flags, async (kiln, target) => {
      const sandbox = await kiln.get(id);
      const preview = await sandbox.previewUrl(port, flags.expires === undefined ? {} : { expiresInMs: flags.expires });
      if (flags.json) printJson(preview);
      else process.stdout.write(`${preview.url}\n`);
      if (target.mode === "remote") return;
      const left = Date.parse(preview.expiresAt) - Date.now();
      note(`serving this preview from kiln on this machine for ${formatDuration(left)}: press Ctrl-C to stop`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          process.off("SIGINT", done);
          process.off("SIGTERM", done);
          resolve();
        };
        // setTimeout holds at most 2^31-1 ms (24.8 days); a longer URL is served that long.
        const timer = setTimeout(done, Math.min(Math.max(left, 0), 2 ** 31 - 1));
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
    });
  });
}
