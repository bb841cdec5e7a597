/**
 * serve: the HTTP API (@kiln/server) in this process. Flags over KILN_* environment over the
 * server's defaults. Prints the URL on stdout; a newly made admin key once on stderr.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0 (sandboxes keep running).
 */
import { readFile } from "node:fs/promises";
import { type Command, InvalidArgumentError } from "commander";
import { type EngineFlags, engineFrom } from "../engine.ts";
import { EXIT_INTERRUPTED, ExitCode } from "../errors.ts";
import { examples } from "../help.ts";
import { err, note, printJson } from "../output.ts";

interface ServeFlags {
  host?: string;
  port?: number;
  dataDir?: string;
  databaseUrl?: string;
  pool?: number | string;
  maxUploadMb?: number;
  json?: boolean;
  engine?: string;
  kubeconfig?: string;
  namespace?: string;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Start the Kiln server: the HTTP API over this machine's Docker engine")
    .option("--host <host>", "address to listen on (KILN_HOST, default 127.0.0.1)")
    .option("--port <port>", "port, 0 for any free one (KILN_PORT, default 7420)", integer("--port", 0, 65_535))
    .option("--data-dir <dir>", "keys, audit log and the SQLite database (KILN_DATA_DIR, default ~/.kiln)")
    .option("--database-url <url>", "postgres://… for PostgreSQL (KILN_DATABASE_URL, default SQLite in the data dir)")
    .option(
      "--pool <n|json|file>",
      'warm sandboxes of the default shape, or pools per shape as JSON or a JSON file: [{"size":2},{"size":1,"image":"ds"},{"size":1,"snapshot":"base"}] (KILN_POOL, default 0)',
      (value: string) => (/^\d+$/.test(value.trim()) ? integer("--pool", 0, 256)(value) : value),
    )
    .option(
      "--max-upload-mb <mb>",
      "largest upload accepted (KILN_MAX_UPLOAD_MB, default 4096)",
      integer("--max-upload-mb", 1, 1 << 30),
    )
    .option(
      "--engine <docker|kubernetes>",
      "where sandboxes run (KILN_ENGINE, default docker; kubernetes is experimental)",
    )
    .option(
      "--kubeconfig <file>",
      "--engine kubernetes: the cluster (KILN_KUBECONFIG, default KUBECONFIG or ~/.kube/config)",
    )
    .option("--namespace <ns>", "--engine kubernetes: the namespace of its sandboxes (KILN_K8S_NAMESPACE)")
    .option("--json", 'print { "url" } on stdout once listening')
    .addHelpText(
      "after",
      `${examples(
        "kiln serve                                   # http://127.0.0.1:7420, data in ~/.kiln",
        "kiln serve --host 0.0.0.0 --port 8080 --pool 2",
        `kiln serve --pool '[{"size":2},{"size":1,"image":"ds"}]'   # or --pool pools.json`,
        "KILN_ADMIN_KEY=kiln_secret kiln serve --data-dir /srv/kiln",
        "KILN_K8S_NETWORK_POLICY=enforced kiln serve --engine kubernetes --namespace kiln   # experimental",
      )}

On the first start without KILN_ADMIN_KEY an admin key is made, printed once on stderr and written
to <data-dir>/admin.key (mode 0600). Also read from the environment: KILN_PUBLIC_URL, KILN_ADMIN_KEY,
KILN_ADMISSION_URL (asked before create/exec/code; a loopback or private address makes serve exit 1
unless KILN_ALLOW_PRIVATE_HOOKS=true), KILN_ADMISSION_TIMEOUT_MS (default 2000: no answer denies).`,
    )
    .action(async (flags: ServeFlags) => {
      // Loaded here, not at the top: the server's dependencies stay out of every other command's start-up.
      const { poolList, serverConfigFromEnv, startServer } = await import("@kiln/server");
      if (typeof flags.pool === "string") {
        const text = flags.pool.trim().startsWith("[") ? flags.pool : await readFile(flags.pool, "utf8");
        flags.pool = poolList("--pool", text) as never;
      }
      const { engine: kind, kubeconfig, namespace, ...serverFlags } = flags;
      const engine = await engineFrom({ engine: kind, kubeconfig, namespace } as EngineFlags);
      const config = {
        ...serverConfigFromEnv(process.env),
        ...definedFlags(serverFlags),
        ...(engine ? { engine } : {}),
        log: (line: string) => note(line),
      };
      const server = await startServer(config);
      if (flags.json) printJson({ url: server.url });
      else process.stdout.write(`${server.url}\n`);
      note(`kiln serve: listening on ${server.url}; Ctrl-C stops it (sandboxes keep running)`);
      if (server.createdAdminKey) {
        note(`${err.bold("Admin key")} (shown once; also in the data dir's admin.key): ${server.createdAdminKey}`);
      }
      await new Promise<void>((resolve, reject) => {
        let closing = false;
        const stop = () => {
          if (closing) {
            reject(new ExitCode(EXIT_INTERRUPTED, "stopped without waiting for in-flight requests"));
            return;
          }
          closing = true;
          note("kiln serve: stopping (finishing in-flight requests)");
          server.close().then(resolve, reject);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
}

function definedFlags(flags: ServeFlags) {
  const { json: _json, ...rest } = flags;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

function integer(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`${flag} takes a whole number from ${min} to ${max}.`);
    return n;
  };
}
