// The adapters' peer-dependency floors: for every peer of every adapter, the lowest version its
// range allows ("^1.4.0" -> "1.4.0"). KILN_PEER_FLOORS="ai=7.0.0 langchain=1.0.0" overrides some
// (to try an older floor before lowering the range).
//   node scripts/lib/peer-floors.mjs            -> JSON { "<adapter dir>": { "<peer>": "<version>" } }
//   node scripts/lib/peer-floors.mjs --pin DIR  -> rewrites DIR/packages/*/package.json: each
//                                                  adapter's devDependency on a peer = its floor
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ADAPTERS = ["langchain", "vercel-ai", "mastra"];
const overrides = Object.fromEntries(
  (process.env.KILN_PEER_FLOORS ?? "")
    .split(/\s+/)
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.lastIndexOf("=")), pair.slice(pair.lastIndexOf("=") + 1)]),
);

function floor(range) {
  const match = /^(?:\^|~|>=\s*)?(\d+\.\d+\.\d+(?:-[\w.]+)?)$/.exec(range.trim());
  if (!match) throw new Error(`cannot take the floor of peer range "${range}": use ^x.y.z, ~x.y.z or >=x.y.z`);
  return match[1];
}

export function peerFloors(root) {
  const floors = {};
  for (const adapter of ADAPTERS) {
    const pkg = JSON.parse(readFileSync(join(root, "packages", adapter, "package.json"), "utf8"));
    floors[adapter] = Object.fromEntries(
      Object.entries(pkg.peerDependencies ?? {}).map(([name, range]) => [name, overrides[name] ?? floor(range)]),
    );
  }
  return floors;
}

const root = new URL("../..", import.meta.url).pathname;
if (process.argv[2] === "--pin") {
  const dir = process.argv[3];
  for (const [adapter, peers] of Object.entries(peerFloors(root))) {
    const file = join(dir, "packages", adapter, "package.json");
    const pkg = JSON.parse(readFileSync(file, "utf8"));
    for (const [name, version] of Object.entries(peers)) pkg.devDependencies[name] = version;
    writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
  }
} else {
  console.log(JSON.stringify(peerFloors(root), null, 2));
}
