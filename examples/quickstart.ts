// Kiln's main job in one script: a real sandbox running real code, with timings.
//   bash scripts/demo.sh        (installs what is missing, then runs this)
//   node examples/quickstart.ts (once set up)
import { writeFile } from "node:fs/promises";
import { Kiln } from "@kiln/core";

const timings: [string, number][] = [];
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await work();
  timings.push([label, performance.now() - started]);
  return value;
}

await using kiln = new Kiln({ pool: { size: 1 } });
await timed("runtime image ready", () =>
  kiln.images.ensure({ onProgress: (e) => console.log(`  [image ${e.phase}] ${e.message.slice(0, 100)}`) }),
);
await timed("warm pool filled (1 sandbox)", () => kiln.pool?.filled() ?? Promise.resolve());

await using sandbox = await timed("create sandbox (from the warm pool)", () =>
  kiln.create({ labels: { example: "quickstart" } }),
);
console.log(`sandbox ${sandbox.id.slice(0, 12)} is running\n`);

const first = await timed("runCode: first Python cell", () => sandbox.runCode("x = 21\nx * 2"));
console.log(`>>> x = 21; x * 2\n${first.results[0]?.text}`);
const second = await timed("runCode: second cell (state kept)", () => sandbox.runCode("x + 1"));
console.log(`>>> x + 1\n${second.results[0]?.text}\n`);

await timed("files: write a CSV", () =>
  sandbox.files.write("sales.csv", "month,revenue\njan,120\nfeb,135\nmar,160\napr,150\n"),
);
const stats = await timed("runCode: pandas", () =>
  sandbox.runCode("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.describe()"),
);
console.log(`>>> df.describe()\n${stats.results.find((r) => r.isMainResult)?.text}\n`);

const chart = await timed("runCode: matplotlib chart", () =>
  sandbox.runCode("import matplotlib.pyplot as plt\nplt.bar(df.month, df.revenue)\nplt.title('Revenue')"),
);
const png = chart.results.find((r) => r.png)?.png;
if (png) {
  await writeFile("quickstart-chart.png", Buffer.from(png, "base64"));
  console.log(
    `chart returned as PNG (${Math.round((png.length * 3) / 4 / 1024)} KiB), saved to quickstart-chart.png\n`,
  );
}

const broken = await timed("runCode: an exception", () => sandbox.runCode("1 / 0"));
console.log(`an error in the code is data: ${broken.error?.name}: ${broken.error?.value}\n`);

const js = await timed("runCode: TypeScript", () =>
  sandbox.runCode("const xs: number[] = [1, 2, 3];\nxs.map((n) => n * n)", { language: "typescript" }),
);
console.log(`>>> (typescript) xs.map((n) => n * n)\n${js.results[0]?.text}\n`);

const uname = await timed("exec: versions", () => sandbox.exec("uname -sr && python3 --version && node --version"));
console.log(`$ uname -sr && python3 --version && node --version\n${uname.stdout}`);

const failing = await timed("exec: a failing command", () => sandbox.exec("ls /nope"));
console.log(`a failing command is data too: status=${failing.status} exit=${failing.exitCode}\n`);

const limited = await timed("exec: killed at timeoutMs 300", () => sandbox.exec("sleep 10", { timeoutMs: 300 }));
console.log(`sleep 10 with timeoutMs 300 -> status=${limited.status}\n`);

// Snapshots: files and Python variables survive into a new sandbox (in this or any later process).
const snapshotName = `quickstart-${process.pid}`;
const snapshot = await timed("snapshot (files + Python state)", () => sandbox.snapshot(snapshotName));
console.log(`snapshot "${snapshot.name}" saved Python variables: ${snapshot.state?.default?.saved.join(", ")}`);
await timed("restore snapshot + first result", async () => {
  await using restored = await kiln.create({ snapshot: snapshotName });
  const again = await restored.runCode("f'{len(df)} rows, x = {x}'");
  console.log(`in the restored sandbox: ${again.results[0]?.text}\n`);
});
await kiln.snapshots.delete(snapshotName);

await timed("create sandbox (cold, 512 MiB shape)", async () => {
  await using cold = await kiln.create({ resources: { memoryMb: 512 } });
  await cold.exec("true");
});

await timed("delete sandbox", () => sandbox.delete());

console.log("timings");
for (const [label, ms] of timings) console.log(`  ${label.padEnd(38)} ${ms.toFixed(1).padStart(9)} ms`);
