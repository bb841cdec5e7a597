// Checks packed tarballs as npm users get them: a LICENSE, a README whose links all resolve for
// them (no paths into the repository), dependencies on @kiln/core as a range (never workspace:),
// one version for every package, and source maps whose sources are in the tarball.
//   node scripts/lib/check-tarballs.mjs a.tgz b.tgz ...   (exits 1 on any problem, listing them)
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const problems = [];
const versions = new Map();
for (const tarball of process.argv.slice(2)) {
  const dir = mkdtempSync(join(tmpdir(), "kiln-tarball-"));
  execFileSync("tar", ["-xzf", tarball, "-C", dir]);
  const root = join(dir, "package");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const where = `${pkg.name}@${pkg.version}`;
  versions.set(pkg.name, pkg.version);
  if (
    !existsSync(join(root, "LICENSE")) ||
    !/Apache License\s+Version 2\.0/.test(readFileSync(join(root, "LICENSE"), "utf8"))
  )
    problems.push(`${where}: no Apache-2.0 LICENSE file`);
  for (const field of ["repository", "homepage", "bugs"]) if (!pkg[field]) problems.push(`${where}: no "${field}"`);
  for (const [name, range] of Object.entries({ ...pkg.dependencies, ...pkg.peerDependencies })) {
    if (String(range).startsWith("workspace:")) problems.push(`${where}: ${name} is "${range}"`);
    if (name === "@kiln/core" && !/^\^/.test(range))
      problems.push(`${where}: @kiln/core pinned exactly ("${range}"), not a range`);
  }
  const readme = readFileSync(join(root, "README.md"), "utf8");
  for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^(https?:|mailto:|#)/.test(target)) continue;
    if (!existsSync(resolve(root, target.split("#")[0])))
      problems.push(`${where}: README links ${target}, not in the package`);
  }
  const walk = (d) =>
    readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  for (const file of walk(root).filter((f) => f.endsWith(".map"))) {
    const map = JSON.parse(readFileSync(file, "utf8"));
    for (const source of map.sources ?? []) {
      if (!existsSync(resolve(dirname(file), map.sourceRoot ?? "", source)))
        problems.push(`${where}: ${file.slice(root.length + 1)} points at ${source}, not in the package`);
    }
  }
}
if (new Set(versions.values()).size > 1)
  problems.push(`versions differ: ${[...versions].map(([n, v]) => `${n}@${v}`).join(", ")}`);
if (problems.length) {
  console.error(problems.map((p) => `  ${p}`).join("\n"));
  process.exit(1);
}
console.log(`tarballs ok: ${[...versions].map(([n, v]) => `${n}@${v}`).join(", ")}`);
