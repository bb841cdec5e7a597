/**
 * The `kiln` program: one file per command group under commands/, each exporting a
 * register(program) that adds its commands. A new group (shell, ps/logs/preview, keys, image,
 * mcp) is one more file and one more line here.
 */
import { Command } from "commander";
import { registerAudit } from "./commands/audit.ts";
import { registerCompletion } from "./commands/completion.ts";
import { registerCp } from "./commands/cp.ts";
import { registerDoctor } from "./commands/doctor.ts";
import { registerExec } from "./commands/exec.ts";
import { registerImages } from "./commands/images.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerLogin } from "./commands/login.ts";
import { registerMcp } from "./commands/mcp.ts";
import { registerOrgs } from "./commands/orgs.ts";
import { registerPreview } from "./commands/preview.ts";
import { registerProcesses } from "./commands/processes.ts";
import { registerRun } from "./commands/run.ts";
import { registerSandboxes } from "./commands/sandboxes.ts";
import { registerServe } from "./commands/serve.ts";
import { registerShell } from "./commands/shell.ts";
import { registerSnapshots } from "./commands/snapshots.ts";
import { registerVolumes } from "./commands/volumes.ts";
import { withCommonOptions } from "./context.ts";
import { err } from "./output.ts";
import { VERSION } from "./version.ts";

export function createProgram(): Command {
  const program = new Command("kiln")
    .description("Sandboxes for AI-generated code: on this machine's Docker engine, or on a Kiln server")
    .version(VERSION, "-v, --version")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError()
    // Options before the command belong to kiln (kiln --url U ls), after it to the command (kiln ls --url U).
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(err.red(text)) })
    .addHelpText(
      "after",
      `
Examples:
  $ kiln create --name box              # a sandbox on this machine's Docker engine
  $ kiln exec box -- python3 -c 'print(6*7)'
  $ kiln run box analysis.py            # charts are saved as analysis-1.png, ...
  $ kiln serve                          # the HTTP API on 127.0.0.1:7420
  $ kiln login --url http://host:7420   # then every command talks to that server

Local mode (this machine's engine) is the default; --url/KILN_URL with --api-key/KILN_API_KEY, or
kiln login, selects a server; --local forces this machine. Exit codes: 0 success, 1 failure,
2 usage error; exec exits with its command's code.`,
    );
  withCommonOptions(program);
  // kiln --json --url U ls: what kiln was given fills what the command was not.
  program.hook("preAction", (root, action) => {
    for (const [key, value] of Object.entries(root.opts())) {
      const source = action.getOptionValueSource(key);
      if (
        value !== undefined &&
        (source === undefined || source === "default" || (source === "env" && root.getOptionValueSource(key) === "cli"))
      ) {
        if (action.options.some((o) => o.attributeName() === key)) action.setOptionValueWithSource(key, value, "cli");
      }
    }
  });
  // Subcommands made with program.command() inherit exitOverride and the output settings.
  registerServe(program);
  registerSandboxes(program);
  registerExec(program);
  registerShell(program);
  registerProcesses(program);
  registerPreview(program);
  registerRun(program);
  registerCp(program);
  registerSnapshots(program);
  registerImages(program);
  registerVolumes(program);
  registerDoctor(program);
  registerLogin(program);
  registerKeys(program);
  registerOrgs(program);
  registerAudit(program);
  registerMcp(program);
  registerCompletion(program);
  return program;
}
