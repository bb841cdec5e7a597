/**
 * mcp: the Model Context Protocol on stdio (@kiln/mcp) for Claude Desktop, Cursor, VS Code and
 * any MCP client, over this machine's engine or the configured server (KILN_URL / kiln login).
 * stdout carries only the protocol; notes go to stderr. --print-config prints the clients'
 * configuration instead.
 */
import { type Command, Option } from "commander";
import { type CommonOptions, collect, pairs, resolveTarget, withCommonOptions, withKiln } from "../context.ts";
import { examples } from "../help.ts";
import { printJson } from "../output.ts";

interface McpFlags extends CommonOptions {
  printConfig?: boolean;
  client?: "claude" | "cursor" | "vscode";
  idleTimeout?: number;
  label?: string[];
}

export function registerMcp(program: Command): void {
  withCommonOptions(
    program
      .command("mcp")
      .description("Serve the Model Context Protocol on stdio: sandbox tools for Claude Desktop, Cursor, VS Code")
      .option("--print-config", "print ready-to-paste MCP client configuration (JSON) and exit")
      .addOption(
        new Option("--client <name>", "with --print-config: only this client's configuration").choices([
          "claude",
          "cursor",
          "vscode",
        ]),
      )
      .option("--label <k=v>", "a label on the session's sandbox (repeatable)", collect)
      .option(
        "--idle-timeout <minutes>",
        "delete the session's sandbox after this long without a call (default 15)",
        (v) => {
          const n = Number(v);
          if (!Number.isFinite(n) || n <= 0) throw new Error("--idle-timeout takes a positive number of minutes");
          return n;
        },
      )
      .addHelpText(
        "after",
        `${examples(
          "kiln mcp                                     # stdio, this machine's Docker engine",
          "KILN_URL=http://host:7420 KILN_API_KEY=kiln_... kiln mcp   # stdio, sandboxes on a server",
          "kiln mcp --print-config --client claude      # paste into claude_desktop_config.json",
        )}

Tools: run_code, run_command, read_file, write_file, list_files, create_sandbox, list_sandboxes,
delete_sandbox, snapshot_sandbox, start_process, preview_url. The session's own sandbox is made on
its first call and deleted when the client disconnects. A Kiln server also serves MCP over
Streamable HTTP at <url>/mcp (Authorization: Bearer <key>).`,
      ),
  ).action(async (flags: McpFlags) => {
    const { printConfig, serveStdio } = await import("@kiln/mcp");
    if (flags.printConfig) {
      const target = await resolveTarget(flags);
      const remote = target.mode === "remote" ? target : undefined;
      const configs = printConfig({
        command: "npx",
        args: ["-y", "@kiln/cli", "mcp"],
        ...(remote
          ? { env: { KILN_URL: remote.url, KILN_API_KEY: remote.apiKey }, url: remote.url, apiKey: remote.apiKey }
          : {}),
      });
      const chosen = { claude: configs.claudeDesktop, cursor: configs.cursor, vscode: configs.vscode };
      printJson(flags.client ? chosen[flags.client] : chosen);
      return;
    }
    const labels = pairs(flags.label, "--label");
    await withKiln(flags, (kiln) =>
      serveStdio(kiln, {
        sandboxOptions: { labels },
        ...(flags.idleTimeout === undefined ? {} : { idleTimeoutMs: flags.idleTimeout * 60_000 }),
      }),
    );
  });
}
