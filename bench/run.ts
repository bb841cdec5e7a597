// `pnpm bench`: Kiln's hot paths next to their baselines, in one run on one machine.
// Prints p50/p95 and ratios, and writes the table to bench/results/latest.md.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import { promisify } from "node:util";
import { Kiln } from "@kiln/core";
import { measure, type Series, table, timeOnly } from "./stats.ts";

const run = promisify(execFile);
const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 30);
const WARMUP = 2;

const kiln = new Kiln();
const image = await kiln.images.ensure();
const engine = kiln.engine;
const sections: string[] = [];

async function series(label: string, once: () => Promise<number>): Promise<Series> {
  for (let i = 0; i < WARMUP; i++) await once();
  const s = await measure(label, ITERATIONS, once);
  console.error(`  measured ${label}`);
  return s;
}

/** The engine's own floor: create + start the same hardened container, then one plain exec. */
async function dockerodeFloor(): Promise<number> {
  let id = "";
  return timeOnly(
    async () => {
      id = await engine.createContainer({
        name: `kiln-bench-${process.pid}-${Math.random().toString(36).slice(2)}`,
        image,
        labels: { "kiln.bench": "1" },
        env: {},
        cpus: 1,
        memoryMb: 1024,
        pids: 512,
        network: "none",
        volumes: [],
      });
      await engine.startContainer(id);
      const channel = await engine.openProcess(id, ["echo", "hi"]);
      let out = "";
      channel.stream.on("data", (c: Buffer) => (out += c));
      await new Promise((resolve) => channel.stream.on("end", resolve));
      if (out !== "hi\n") throw new Error(`floor exec printed ${JSON.stringify(out)}`);
    },
    () => engine.removeContainer(id),
  );
}

async function dockerRun(): Promise<number> {
  return timeOnly(async () => {
    const { stdout } = await run("docker", ["run", "--rm", "--network", "none", image, "echo", "hi"]);
    if (stdout !== "hi\n") throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
  });
}

console.error(`benchmarking with ${image}, ${ITERATIONS} iterations (+${WARMUP} warm-up) each`);

{
  const kilnCold = await series("kiln.create() + exec('echo hi')", async () => {
    let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
    return timeOnly(
      async () => {
        sandbox = await kiln.create({ labels: { bench: "1" } });
        const result = await sandbox.exec("echo hi");
        if (result.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(result.stdout)}`);
      },
      () => sandbox?.delete() ?? Promise.resolve(),
    );
  });
  const floor = await series("dockerode create + start + exec (floor)", dockerodeFloor);
  const cli = await series("docker run --rm IMAGE echo hi", dockerRun);
  sections.push(table("Cold start: new sandbox to first command output", [kilnCold, floor, cli], floor));
}

{
  const sandbox = await kiln.create({ labels: { bench: "1" } });
  const id = sandbox.id;
  const kilnExec = await series("sandbox.exec('echo hi') (running sandbox)", () =>
    timeOnly(() => sandbox.exec("echo hi")),
  );
  const dockerExec = await series("docker exec CID echo hi", () =>
    timeOnly(() => run("docker", ["exec", id, "echo", "hi"])),
  );
  const engineExec = await series("engine exec (dockerode) echo hi", () =>
    timeOnly(async () => {
      const channel = await engine.openProcess(id, ["echo", "hi"]);
      channel.stream.resume();
      await new Promise((resolve) => channel.stream.on("end", resolve));
    }),
  );
  sections.push(table("A command in a running sandbox", [kilnExec, engineExec, dockerExec], engineExec));
  await sandbox.delete();
}

await kiln.close();

const { stdout: dockerVersion } = await run("docker", ["version", "--format", "{{.Server.Version}}"]).catch(() => ({
  stdout: "?",
}));
const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Docker engine ${dockerVersion.trim()}, Node ${process.versions.node}`;
const report = [
  `# Kiln benchmarks`,
  "",
  `Machine: ${machine}  `,
  `Date: ${new Date().toISOString()}  `,
  `Image: ${image}`,
  "",
  ...sections.flatMap((s) => [s, ""]),
].join("\n");
console.log(report);
await writeFile(new URL("./results/latest.md", import.meta.url), report);
