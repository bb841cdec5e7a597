// Kiln's main job in one script: a real sandbox running real code, with timings.
//   bash scripts/demo.sh        (installs what is missing, then runs this)
//   node examples/quickstart.ts (once set up)
import { Kiln } from "@kiln/core";

const timings: [string, number][] = [];
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await work();
  timings.push([label, performance.now() - started]);
  return value;
}

await using kiln = new Kiln();
await timed("runtime image ready", () =>
  kiln.images.ensure({ onProgress: (e) => console.log(`  [image ${e.phase}] ${e.message.slice(0, 100)}`) }),
);

await using sandbox = await timed("create sandbox (cold)", () => kiln.create({ labels: { example: "quickstart" } }));
console.log(`sandbox ${sandbox.id.slice(0, 12)} is running`);

const hello = await timed("exec: echo", () => sandbox.exec("echo hello from $(whoami) in $(pwd)"));
console.log(`$ echo ...\n${hello.stdout}`);

const uname = await timed("exec: uname + python version", () =>
  sandbox.exec("uname -sr && python3 --version && node --version"),
);
console.log(uname.stdout);

await timed("files: write a CSV", () =>
  sandbox.files.write("data/sales.csv", "month,revenue\njan,120\nfeb,135\nmar,160\n"),
);
const wc = await timed("exec: wc the CSV", () => sandbox.exec(["wc", "-l", "data/sales.csv"]));
console.log(`$ wc -l data/sales.csv\n${wc.stdout}`);

const failing = await timed("exec: a failing command", () => sandbox.exec("ls /nope"));
console.log(
  `a failing command is data, not an exception: status=${failing.status} exit=${failing.exitCode}\n  ${failing.stderr.trim()}\n`,
);

const limited = await timed("exec: timeout after 300 ms", () => sandbox.exec("sleep 10", { timeoutMs: 300 }));
console.log(`sleep 10 with timeoutMs 300 -> status=${limited.status}\n`);

const files = await timed("files: list", () => sandbox.files.list("data"));
console.log(`files in data/: ${files.map((f) => `${f.name} (${f.size} B)`).join(", ")}\n`);

await timed("delete sandbox", () => sandbox.delete());

console.log("timings");
for (const [label, ms] of timings) console.log(`  ${label.padEnd(32)} ${ms.toFixed(1).padStart(9)} ms`);
