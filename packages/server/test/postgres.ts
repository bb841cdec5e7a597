// A throwaway PostgreSQL server for tests: initdb in a temp dir, pg_ctl on a free loopback
// port, as the `postgres` user when running as root. Installed by `scripts/setup.sh postgres`.
import { execFile } from "node:child_process";
import { chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

async function pgBin(name: string): Promise<string> {
  const versions = await readdir("/usr/lib/postgresql").catch(() => [] as string[]);
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) {
    throw new Error("PostgreSQL is not installed: run `bash scripts/setup.sh postgres` (Debian's postgresql package)");
  }
  return join("/usr/lib/postgresql", newest, "bin", name);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const dir = await mkdtemp(join(tmpdir(), "kiln-pg-"));
  const data = join(dir, "data");
  const asRoot = userInfo().uid === 0;
  const as = async (cmd: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", cmd, ...args]) : run(cmd, args);
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await as(await pgBin("initdb"), ["-D", data, "-A", "trust", "-U", "kiln", "--no-sync"]);
  const port = await freePort();
  await as(await pgBin("pg_ctl"), [
    "-D",
    data,
    "-w",
    "-l",
    join(dir, "log"),
    "-o",
    `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off`,
    "start",
  ]);
  return {
    url: `postgres://kiln@127.0.0.1:${port}/postgres`,
    async stop() {
      await as(await pgBin("pg_ctl"), ["-D", data, "-w", "-m", "fast", "stop"]).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
