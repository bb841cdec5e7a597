// The remote client (`new Kiln({ url })`) over loopback HTTP next to the same calls in-process,
// against the same engine, in one run (`pnpm bench` runs it after the server's cases; alone:
// `node bench/remote.ts`, which writes bench/results/remote-latest.md). Target: a warm create +
// first runCode through a Kiln server costs at most 5 ms more at p50 than in-process.
// Iterations alternate in-process and remote, which goes first alternating too, and each starts
// once both warm pools are full again: a side measured while the other side's pool refill (a
// container create and start) still runs, or right after the other side's delete, is slowed by
// that work, not by its own path (issue 10: with only its own pool awaited and a fixed order, the
// remote side always ran second, into the in-process side's refill). The server runs in this
// process (startServer).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kiln, type Sandbox } from "@kiln/core";
import { startServer } from "@kiln/server";
import { percentile, type Series, table, timeOnly } from "./stats.ts";

const ITERATIONS = Number(process.env.KILN_BENCH_ITERATIONS ?? 30);
const WARMUP = 2;
const LABELS = { bench: "1" };

async function firstResult(kiln: Kiln, pools: Kiln[]): Promise<number> {
  await Promise.all(pools.map((p) => p.pool?.filled()));
  let sandbox: Sandbox | undefined;
  return timeOnly(
    async () => {
      sandbox = await kiln.create({ labels: LABELS });
      const run = await sandbox.runCode("print(1+1)");
      if (run.stdout !== "2\n") throw new Error(`runCode printed ${JSON.stringify(run.stdout)}`);
    },
    () => sandbox?.delete() ?? Promise.resolve(),
  );
}

/**
 * CPU time of this whole process (client, server, core; every thread) per call, over a block of
 * `calls` calls. On a loaded machine wall times swing with other work; CPU time is what that
 * load multiplies, so it compares the two sides more steadily.
 */
async function cpuPerCall(work: () => Promise<unknown>, calls = 20): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / calls;
}

/** Alternates the two sides, iteration by iteration, and which of them goes first. */
async function sideBySide(
  labels: [string, string],
  a: () => Promise<number>,
  b: () => Promise<number>,
  iterations = ITERATIONS,
): Promise<[Series, Series]> {
  for (let i = 0; i < WARMUP; i++) {
    await a();
    await b();
  }
  const sa: Series = { label: labels[0], samples: [] };
  const sb: Series = { label: labels[1], samples: [] };
  for (let i = 0; i < iterations; i++) {
    if (i % 2 === 0) {
      sa.samples.push(await a());
      sb.samples.push(await b());
    } else {
      sb.samples.push(await b());
      sa.samples.push(await a());
    }
  }
  console.error(`  measured ${labels[0]} / ${labels[1]}`);
  return [sa, sb];
}

/** The remote client's cases, as markdown sections. */
export async function remoteClientBenchmarks(): Promise<string[]> {
  const local = new Kiln({ pool: { size: 2 } });
  const serverKiln = new Kiln({ pool: { size: 2 } });
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-bench-server-"));
  const apiKey = `kiln_${randomBytes(24).toString("base64url")}`;
  const server = await startServer({ port: 0, dataDir, adminKey: apiKey, kiln: serverKiln, log: () => {} });
  const remote = new Kiln({ url: server.url, apiKey });
  console.error(`benchmarking the remote client against ${server.url}, ${ITERATIONS} iterations (+${WARMUP} warm-up)`);

  const sections: string[] = [];
  try {
    const [inProcess, overHttp] = await sideBySide(
      ["in-process: warm kiln.create() + runCode('print(1+1)')", "remote client: the same through a Kiln server"],
      () => firstResult(local, [local, serverKiln]),
      () => firstResult(remote, [local, serverKiln]),
    );
    const extra = percentile(overHttp.samples, 50) - percentile(inProcess.samples, 50);
    sections.push(
      [
        table("Remote client vs in-process: warm sandbox to first result", [inProcess, overHttp], inProcess),
        "",
        `Remote overhead at p50: ${extra.toFixed(1)} ms (target: at most 5 ms).`,
      ].join("\n"),
    );

    const localBox = await local.create({ labels: LABELS });
    const remoteBox = await remote.create({ labels: LABELS });
    // Both came from the pools: the further calls are measured once the refills are done, not
    // beside two container creates (which put the first dozen calls of each side at 5-20 ms).
    await Promise.all([local, serverKiln].map((p) => p.pool?.filled()));
    try {
      const [cellLocal, cellRemote] = await sideBySide(
        ["in-process: runCode('print(1+1)') in a running sandbox", "remote client: the same through a Kiln server"],
        () => timeOnly(() => localBox.runCode("print(1+1)")),
        () => timeOnly(() => remoteBox.runCode("print(1+1)")),
        ITERATIONS * 3,
      );
      const [execLocal, execRemote] = await sideBySide(
        ["in-process: exec('echo hi') in a running sandbox", "remote client: the same through a Kiln server"],
        () => timeOnly(() => localBox.exec("echo hi")),
        () => timeOnly(() => remoteBox.exec("echo hi")),
        ITERATIONS * 3,
      );
      // With an output callback the call streams (SSE), as it must to deliver output as it happens.
      const [, cellStreamed] = await sideBySide(
        ["in-process: runCode with onStdout", "remote client: runCode with onStdout (streamed)"],
        () => timeOnly(() => localBox.runCode("print(1+1)", { onStdout: () => {} })),
        () => timeOnly(() => remoteBox.runCode("print(1+1)", { onStdout: () => {} })),
        ITERATIONS * 3,
      );
      const [cpuLocal, cpuRemote] = await sideBySide(
        ["in-process: CPU ms per runCode (blocks of 20)", "remote client: CPU ms per runCode, client + server"],
        () => cpuPerCall(() => localBox.runCode("print(1+1)")),
        () => cpuPerCall(() => remoteBox.runCode("print(1+1)")),
      );
      sections.push(
        table(
          "A further call in a running sandbox",
          [cellLocal, cellRemote, cellStreamed, execLocal, execRemote],
          cellLocal,
        ),
        table("CPU time of this process per further runCode (load-independent-ish)", [cpuLocal, cpuRemote], cpuLocal),
      );
    } finally {
      await localBox.delete();
      await remoteBox.delete();
    }
  } finally {
    await remote.close();
    await server.close();
    await serverKiln.close();
    await local.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return sections;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sections = await remoteClientBenchmarks();
  const report = [
    "# Kiln remote client benchmarks",
    "",
    `Date: ${new Date().toISOString()}, Node ${process.versions.node}, a Kiln server on loopback in the same process, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
    "",
    ...sections.flatMap((s) => [s, ""]),
  ].join("\n");
  console.log(report);
  await writeFile(new URL("./results/remote-latest.md", import.meta.url), report);
}
