// `node bench/remote-profile.ts [calls] [out.cpuprofile]`: a loop of further remote
// runCode('print(1+1)') calls against startServer in this process (client + server together,
// issue 10). Prints CPU ms per call (this process, every thread); with an output file, writes a
// V8 CPU profile of just that loop (node:inspector), which `node bench/profile-top.ts FILE`
// sums by function and by package. KILN_PROFILE_CREATE=1 also times warm create + first runCode.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { startServer } from "@kiln/server";

const CALLS = Number(process.argv[2] ?? 2000);
const OUT = process.argv[3];
const BLOCK = 100;
const session = new Session();
const serverKiln = new Kiln({ pool: { size: 1 } });
const dataDir = await mkdtemp(join(tmpdir(), "kiln-profile-server-"));
const apiKey = `kiln_${randomBytes(24).toString("base64url")}`;
const server = await startServer({ port: 0, dataDir, adminKey: apiKey, kiln: serverKiln, log: () => {} });
const remote = new Kiln({ url: server.url, apiKey });
try {
  // KILN_PROFILE_LOCAL=1: the same loop in-process (no server in the path), for comparison.
  const box = await (process.env.KILN_PROFILE_LOCAL === "1" ? serverKiln : remote).create({ labels: { bench: "1" } });
  await serverKiln.pool?.filled();
  try {
    for (let i = 0; i < 200; i++) await box.runCode("print(1+1)");
    if (OUT) {
      session.connect();
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", {
        interval: Number(process.env.KILN_PROFILE_INTERVAL_US ?? 250),
      });
      await session.post("Profiler.start");
    }
    // Blocks of BLOCK calls: on a shared machine the lowest and the median block say more than the mean.
    const blocks: number[] = [];
    const before = process.cpuUsage();
    const started = performance.now();
    for (let done = 0; done < CALLS; done += BLOCK) {
      const b = process.cpuUsage();
      for (let i = 0; i < BLOCK; i++) await box.runCode("print(1+1)");
      const u = process.cpuUsage(b);
      blocks.push((u.user + u.system) / 1000 / BLOCK);
    }
    const used = process.cpuUsage(before);
    const wall = performance.now() - started;
    blocks.sort((a, b) => a - b);
    if (OUT) {
      const { profile } = await session.post("Profiler.stop");
      await writeFile(OUT, JSON.stringify(profile));
      session.disconnect();
    }
    console.log(
      `${CALLS} further runCode: CPU ${((used.user + used.system) / 1000 / CALLS).toFixed(3)} ms/call ` +
        `(user ${(used.user / 1000 / CALLS).toFixed(3)}, system ${(used.system / 1000 / CALLS).toFixed(3)}), ` +
        `wall ${(wall / CALLS).toFixed(3)} ms/call; blocks of ${BLOCK}: min ${blocks[0]?.toFixed(3)}, ` +
        `median ${blocks[Math.floor(blocks.length / 2)]?.toFixed(3)} ms/call; load ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")}`,
    );
  } finally {
    await box.delete();
  }
  if (process.env.KILN_PROFILE_CREATE === "1") {
    const n = 30;
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      await serverKiln.pool?.filled();
      const b = await remote.create({ labels: { bench: "1" } });
      await b.runCode("print(1+1)");
      await b.delete();
    }
    const used = process.cpuUsage(before);
    console.log(
      `${n} warm create + runCode + delete: CPU ${((used.user + used.system) / 1000 / n).toFixed(2)} ms each`,
    );
  }
} finally {
  await remote.close();
  await server.close();
  await serverKiln.close();
  await rm(dataDir, { recursive: true, force: true });
}
