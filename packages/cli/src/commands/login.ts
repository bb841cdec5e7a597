/** login / logout: remember a Kiln server and its API key for every later command. */
import { text as readAll } from "node:stream/consumers";
import { isCancel, password, text } from "@clack/prompts";
import { type Command, Option } from "commander";
import { configFile, forgetLogin, saveLogin } from "../config.ts";
import { checkUrl, connect } from "../context.ts";
import { kilnErrorCode, UsageError } from "../errors.ts";
import { examples } from "../help.ts";
import { note, printJson } from "../output.ts";

interface LoginFlags {
  url?: string;
  apiKey?: string;
  verify: boolean;
  json?: boolean;
}

export function registerLogin(program: Command): void {
  program
    .command("login")
    .description(
      `Save a server's URL and API key (in ${configFile().replace(process.env.HOME ?? "\0", "~")}, mode 0600)`,
    )
    .addOption(
      new Option("--url <url>", "the server, e.g. http://127.0.0.1:7420 (asked for on a terminal)").env("KILN_URL"),
    )
    .addOption(
      new Option("--api-key <key>", "its API key; - reads it from stdin (asked for on a terminal)").env("KILN_API_KEY"),
    )
    .option("--no-verify", "save without checking the key against the server")
    .option("--json", "print { url, configFile } on stdout")
    .addHelpText(
      "after",
      examples(
        "kiln login                                       # asks for both",
        "kiln login --url http://host:7420 --api-key - < admin.key",
        "kiln ls                                          # now lists the server's sandboxes",
      ),
    )
    .action(async (flags: LoginFlags) => {
      const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
      const rawUrl = flags.url ?? (interactive ? await ask("Kiln server URL", "http://127.0.0.1:7420") : undefined);
      if (!rawUrl) throw new UsageError("kiln login needs --url (or KILN_URL) when not on a terminal");
      const url = checkUrl(rawUrl);
      let apiKey = flags.apiKey === "-" ? (await readAll(process.stdin)).trim() : flags.apiKey;
      if (!apiKey && interactive) apiKey = await askSecret("API key");
      if (!apiKey) throw new UsageError("kiln login needs --api-key (or KILN_API_KEY, or - to read it from stdin)");
      if (flags.verify) await verify(url, apiKey);
      const file = await saveLogin({ url, apiKey });
      if (flags.json) printJson({ url, configFile: file });
      else note(`Logged in to ${url}; saved in ${file}`);
    });

  program
    .command("logout")
    .description("Forget the server saved by kiln login")
    .option("--json", "print { loggedOut } on stdout")
    .addHelpText("after", examples("kiln logout"))
    .action(async (flags: { json?: boolean }) => {
      const existed = await forgetLogin();
      if (flags.json) printJson({ loggedOut: existed });
      else note(existed ? `Forgot the saved server (${configFile()})` : "No saved server");
    });
}

async function verify(url: string, apiKey: string): Promise<void> {
  const kiln = await connect({ mode: "remote", url, apiKey, source: "flag" });
  try {
    await kiln.list();
  } catch (error) {
    const code = kilnErrorCode(error);
    if (code === "FORBIDDEN") return; // a valid key without sandboxes:read
    if (code === "UNAUTHORIZED") throw new Error(`${url} refused the key (unknown, revoked or expired); nothing saved`);
    throw new Error(
      `cannot reach ${url}: ${error instanceof Error ? error.message : String(error)}; nothing saved (--no-verify saves anyway)`,
    );
  } finally {
    await kiln.close().catch(() => {});
  }
}

async function ask(message: string, placeholder: string): Promise<string | undefined> {
  const answer = await text({ message, placeholder, output: process.stderr });
  if (isCancel(answer)) throw new UsageError("cancelled");
  return answer || undefined;
}

async function askSecret(message: string): Promise<string | undefined> {
  const answer = await password({ message, output: process.stderr });
  if (isCancel(answer)) throw new UsageError("cancelled");
  return answer || undefined;
}
