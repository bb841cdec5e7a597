// `pnpm bench`: Kiln's hot paths next to their baselines, in one run on one machine.
// Prints p50/p95 and ratios, and writes the table to bench/results/latest.md.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus, release, totalmem } from "node:os";
import { promisify } from "node:util";
import { Kiln } from "@kiln/core";
import { diskBenchmarks } from "./disk.ts";
import { poolBenchmarks } from "./pools.ts";
import { remoteClientBenchmarks } from "./remote.ts";
import { serverBenchmarks } from "./server.ts";
import { measure, type Series, table, timeOnly } from "./stats.ts";
import { terminalBenchmarks } from "./terminals.ts";

const run = promisify(execFile);
const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 30);
const WARMUP = 2;

const kiln = new Kiln();
const image = await kiln.images.ensure();
const engine = kiln.engine;
const sections: string[] = [];
/** KILN_BENCH_SECTIONS=cold,exec,code,snapshot,network,pools,disk,server,terminals,remote,runtimes runs only those (default: all). */
const only = process.env.KILN_BENCH_SECTIONS?.split(",").map((x) => x.trim());
const want = (section: string) => !only || only.includes(section);

async function series(label: string, once: () => Promise<number>): Promise<Series> {
  for (let i = 0; i < WARMUP; i++) await once();
  const s = await measure(label, ITERATIONS, once);
  console.error(`  measured ${label}`);
  return s;
}

/** The engine's own floor: create + start the same hardened container, one plain exec, remove. */
async function dockerodeFloor(withRemove: boolean): Promise<number> {
  let id = "";
  const cycle = async () => {
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
    if (withRemove) await engine.removeContainer(id);
  };
  return withRemove ? timeOnly(cycle) : timeOnly(cycle, () => engine.removeContainer(id));
}

async function dockerRun(): Promise<number> {
  return timeOnly(async () => {
    const { stdout } = await run("docker", ["run", "--rm", "--network", "none", image, "echo", "hi"]);
    if (stdout !== "hi\n") throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
  });
}

/** A cold sandbox to the first command's output; with `withDelete`, its delete() is timed too. */
async function kilnCold(withDelete: boolean): Promise<number> {
  let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
  const cycle = async () => {
    sandbox = await kiln.create({ labels: { bench: "1" } });
    const result = await sandbox.exec("echo hi");
    if (result.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(result.stdout)}`);
    if (withDelete) await sandbox.delete();
  };
  return withDelete ? timeOnly(cycle) : timeOnly(cycle, () => sandbox?.delete() ?? Promise.resolve());
}

/**
 * Several series measured interleaved: each round runs every one once, in a rotating order, so
 * the load of a shared machine falls on all of them alike (compare their ratios, not absolutes).
 */
async function interleaved(runs: [label: string, once: () => Promise<number>][]): Promise<Series[]> {
  for (let i = 0; i < WARMUP; i++) for (const [, once] of runs) await once();
  const samples: number[][] = runs.map(() => []);
  for (let i = 0; i < ITERATIONS; i++) {
    for (let k = 0; k < runs.length; k++) {
      const j = (i + k) % runs.length;
      samples[j]?.push(await (runs[j] as [string, () => Promise<number>])[1]());
    }
  }
  for (const [label] of runs) console.error(`  measured ${label}`);
  return runs.map(([label], j) => ({ label, samples: samples[j] as number[] }));
}

console.error(`benchmarking with ${image}, ${ITERATIONS} iterations (+${WARMUP} warm-up) each`);

if (want("cold")) {
  // The full cycle (create, first command, delete) next to `docker run --rm`, which removes its
  // container too; then the same without the delete, and the engine's own floor of each.
  const rows = await interleaved([
    ["kiln.create() + exec('echo hi') + delete()", () => kilnCold(true)],
    ["dockerode create + start + exec + remove (floor)", () => dockerodeFloor(true)],
    ["docker run --rm IMAGE echo hi", dockerRun],
    ["kiln.create() + exec('echo hi') (delete not timed)", () => kilnCold(false)],
    ["dockerode create + start + exec (floor, remove not timed)", () => dockerodeFloor(false)],
  ]);
  sections.push(table("Cold start: new sandbox to first command output (interleaved rounds)", rows, rows[2] as Series));
}

if (want("exec")) {
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

if (want("code")) {
  const pooled = new Kiln({ pool: { size: 2 } });
  await pooled.pool?.filled();
  const warm = await series("warm: kiln.create() from the pool + runCode('print(1+1)')", async () => {
    await pooled.pool?.filled();
    let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
    return timeOnly(
      async () => {
        sandbox = await pooled.create({ labels: { bench: "1" } });
        const run = await sandbox.runCode("print(1+1)");
        if (run.stdout !== "2\n") throw new Error(`runCode printed ${JSON.stringify(run.stdout)}`);
      },
      () => sandbox?.delete() ?? Promise.resolve(),
    );
  });
  const cold = await series("cold: kiln.create() + runCode('print(1+1)')", async () => {
    let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
    return timeOnly(
      async () => {
        sandbox = await kiln.create({ labels: { bench: "1" } });
        const run = await sandbox.runCode("print(1+1)");
        if (run.stdout !== "2\n") throw new Error(`runCode printed ${JSON.stringify(run.stdout)}`);
      },
      () => sandbox?.delete() ?? Promise.resolve(),
    );
  });
  const dockerRunPython = await series("docker run --rm IMAGE python3 -c 'print(1+1)'", () =>
    timeOnly(() => run("docker", ["run", "--rm", "--network", "none", image, "python3", "-c", "print(1+1)"])),
  );
  const sandbox = await kiln.create({ labels: { bench: "1" } });
  await sandbox.runCode("1");
  const second = await series("a further runCode('print(1+1)') in a running sandbox", () =>
    timeOnly(() => sandbox.runCode("print(1+1)")),
  );
  const dockerExecPython = await series("docker exec CID python3 -c 'print(1+1)'", () =>
    timeOnly(() => run("docker", ["exec", sandbox.id, "python3", "-c", "print(1+1)"])),
  );
  sections.push(
    table(
      "Code: sandbox to first result, and one more cell",
      [warm, cold, dockerRunPython, second, dockerExecPython],
      dockerRunPython,
    ),
  );

  // Host memory of an idle pooled sandbox: its cgroup's resident memory plus its containerd shim.
  const ids = (await engine.listContainers({ "kiln.kind": "pool" })).filter((c) => c.name.startsWith("kiln-pool-"));
  const perSandbox: number[] = [];
  for (const c of ids) {
    const { stdout: stats } = await run("docker", ["stats", "--no-stream", "--format", "{{.MemUsage}}", c.id]);
    const used = parseMiB(stats.split("/")[0] ?? "");
    const { stdout: ps } = await run("sh", [
      "-c",
      `ps -eo rss,args | grep "[c]ontainerd-shim.*${c.id}" | awk '{s+=$1} END {print s+0}'`,
    ]);
    perSandbox.push(used + Number(ps.trim()) / 1024);
  }
  sections.push(
    [
      "### Host memory per idle pooled sandbox (agent + warm Python context)",
      "",
      `${perSandbox.map((m) => `${m.toFixed(1)} MiB`).join(", ")} (cgroup memory as the engine reports it, plus the containerd shim's RSS)`,
    ].join("\n"),
  );
  await sandbox.delete();
  await pooled.close();
}

if (want("snapshot")) {
  // Snapshots of a sandbox holding 100 MB of new files, next to docker commit + docker run.
  const iterations = Math.min(ITERATIONS, Number(process.env.KILN_BENCH_SNAPSHOT_ITERATIONS ?? 10));
  const source = await kiln.create({ labels: { bench: "1" } });
  await source.exec("head -c 100000000 /dev/urandom > /workspace/blob.bin");
  await source.runCode("x = 1");
  let n = 0;
  const name = () => `bench-${process.pid}-${n++}`;
  const slow = async (label: string, once: () => Promise<number>) => {
    await once();
    const s = await measure(label, iterations, once);
    console.error(`  measured ${label}`);
    return s;
  };
  const snap = await slow("sandbox.snapshot(name)", async () => {
    const tag = name();
    return timeOnly(
      () => source.snapshot(tag),
      () => kiln.snapshots.delete(tag),
    );
  });
  const commit = await slow("docker commit CID (baseline)", async () => {
    const tag = `kiln-bench-commit:${name()}`;
    return timeOnly(
      () => run("docker", ["commit", source.id, tag]),
      () => run("docker", ["rmi", tag]),
    );
  });
  const kept = name();
  await source.snapshot(kept);
  const restore = await slow("kiln.create({ snapshot }) + runCode('print(1+1)')", async () => {
    let restored: Awaited<ReturnType<Kiln["create"]>> | undefined;
    return timeOnly(
      async () => {
        restored = await kiln.create({ snapshot: kept, labels: { bench: "1" } });
        await restored.runCode("print(1+1)");
      },
      () => restored?.delete() ?? Promise.resolve(),
    );
  });
  const baseTag = `kiln-bench-commit:${name()}`;
  await run("docker", ["commit", source.id, baseTag]);
  const dockerRunRestore = await slow("docker run --rm COMMITTED python3 -c 'print(1+1)' (baseline)", () =>
    timeOnly(() => run("docker", ["run", "--rm", "--network", "none", baseTag, "python3", "-c", "print(1+1)"])),
  );
  sections.push(table("Snapshot of a sandbox with 100 MB of new files", [snap, commit], commit));
  sections.push(table("Restore from that snapshot to a first result", [restore, dockerRunRestore], dockerRunRestore));
  await run("docker", ["rmi", baseTag]);
  await kiln.snapshots.delete(kept);
  await source.delete();
}

if (want("network")) {
  // An egress sandbox starts a network holder (which filters its namespace) before the sandbox.
  const coldCreate = (network: "none" | "egress") =>
    series(`kiln.create({ network: "${network}" }) + exec('echo hi')`, async () => {
      let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
      return timeOnly(
        async () => {
          sandbox = await kiln.create({ network, labels: { bench: "1" } });
          const result = await sandbox.exec("echo hi");
          if (result.stdout !== "hi\n") throw new Error(`exec printed ${JSON.stringify(result.stdout)}`);
        },
        () => sandbox?.delete() ?? Promise.resolve(),
      );
    });
  const none = await coldCreate("none");
  const egress = await coldCreate("egress");
  sections.push(table('Cold start with network "egress" (holder + filter) vs "none"', [egress, none], none));
}

if (want("pools")) sections.push(...(await poolBenchmarks()));
if (want("disk")) sections.push(...(await diskBenchmarks()));
if (want("server")) sections.push(...(await serverBenchmarks(kiln)));
if (want("terminals")) sections.push(...(await terminalBenchmarks(kiln)));
if (want("remote")) sections.push(...(await remoteClientBenchmarks()));

if (want("runtimes")) {
  // The isolation tiers side by side: a cold create and a pool claim (each runtime its own pool),
  // both to a first command's output. gVisor needs runsc registered with the engine (setup.sh gvisor).
  const rows: Series[] = [];
  for (const runtime of ["runc", "gvisor"] as const) {
    const tier = new Kiln({ defaults: { runtime } });
    rows.push(
      await series(`${runtime}: cold kiln.create() + exec('echo hi')`, async () => {
        let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
        return timeOnly(
          async () => {
            sandbox = await tier.create({ labels: { bench: "1" } });
            if ((await sandbox.exec("echo hi")).stdout !== "hi\n") throw new Error("exec failed");
          },
          () => sandbox?.delete() ?? Promise.resolve(),
        );
      }),
    );
    const pooled = new Kiln({ pool: { size: 2 }, defaults: { runtime } });
    await pooled.pool?.filled();
    rows.push(
      await series(`${runtime}: pool claim kiln.create() + exec('echo hi')`, async () => {
        await pooled.pool?.filled();
        let sandbox: Awaited<ReturnType<Kiln["create"]>> | undefined;
        return timeOnly(
          async () => {
            sandbox = await pooled.create({ labels: { bench: "1" } });
            if ((await sandbox.exec("echo hi")).stdout !== "hi\n") throw new Error("exec failed");
          },
          () => sandbox?.delete() ?? Promise.resolve(),
        );
      }),
    );
    await pooled.close();
    await tier.close();
  }
  sections.push(table("Isolation tiers: create and pool claim to a first command", rows, rows[0] as Series));
}

await kiln.close();

function parseMiB(text: string): number {
  const m = /([\d.]+)\s*([KMG]i?B)/.exec(text.trim());
  if (!m) return Number.NaN;
  const scale = { KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 }[m[2] as string] ?? 1;
  return Number(m[1]) * scale;
}

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
// A run of some sections only keeps the full run's latest.md as it is.
await writeFile(new URL(`./results/latest${only ? `-${only.join("-")}` : ""}.md`, import.meta.url), report);
