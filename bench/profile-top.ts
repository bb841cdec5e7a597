// `node bench/profile-top.ts FILE.cpuprofile [top]`: a V8 CPU profile's self time summed by
// function (name + file:line) and by package or area, as percentages of the profile (issue 10).
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = process.argv[2];
if (!file) throw new Error("usage: node bench/profile-top.ts FILE.cpuprofile [top]");
const TOP = Number(process.argv[3] ?? 40);
const profile = JSON.parse(readFileSync(file, "utf8")) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

function area(url: string): string {
  if (url === "") return "(native/vm)";
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\//.exec(url);
  if (pnpm?.[1]) return pnpm[1].replace(/@[\d.]+.*$/, "").replace(/\+/, "/");
  const ours = /packages\/([^/]+)\/src\/(.*)$/.exec(url);
  if (ours) return `@kiln/${ours[1]}/${ours[2]}`;
  if (url.startsWith("node:")) return url;
  return url.replace(/^file:\/\/.*\//, "");
}

const fns = new Map<string, number>();
const areas = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const key = `${functionName || "(anonymous)"} ${area(url)}:${lineNumber + 1}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
  const a = area(url);
  areas.set(a, (areas.get(a) ?? 0) + us);
}
// Inclusive ("total") time: each sample counts once for every function on its stack.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (n: Node) =>
  `${n.callFrame.functionName || "(anonymous)"} ${area(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const inclusive = new Map<string, number>();
for (const [id, us] of self) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at);
    if (n) seen.add(keyOf(n));
  }
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
console.log("\nby area:");
for (const [k, v] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(v)}  ${k}`);
console.log("\nby function:");
for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(v)}  ${k}`);
// The call tree, top-down, down to TREE_MIN percent (KILN_PROFILE_TREE_MIN, default 0.5).
const TREE_MIN = Number(process.env.KILN_PROFILE_TREE_MIN ?? 0.5);
const subtotal = new Map<number, number>();
const sum = (id: number): number => {
  const n = byId.get(id);
  let t = self.get(id) ?? 0;
  for (const c of n?.children ?? []) t += sum(c);
  subtotal.set(id, t);
  return t;
};
const root = profile.nodes[0];
if (root) sum(root.id);
const print = (id: number, depth: number) => {
  const n = byId.get(id);
  if (!n) return;
  const t = subtotal.get(id) ?? 0;
  if ((100 * t) / total < TREE_MIN) return;
  if (n.callFrame.functionName !== "(idle)") console.log(`${pct(t)} ${"  ".repeat(depth)}${keyOf(n)}`);
  for (const c of [...(n.children ?? [])].sort((a, b) => (subtotal.get(b) ?? 0) - (subtotal.get(a) ?? 0)))
    print(c, depth + 1);
};
if (process.env.KILN_PROFILE_TREE === "1") {
  console.log("\ncall tree:");
  if (root) print(root.id, 0);
}
console.log("\nby function, inclusive (self + callees):");
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, TOP * 2)) console.log(`${pct(v)}  ${k}`);
