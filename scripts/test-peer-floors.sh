#!/usr/bin/env bash
# The adapters' tests against the oldest framework versions their peer ranges allow (the floors:
# "^7.0.110" -> ai 7.0.110). A copy of this checkout in a temp dir gets those versions installed
# as the adapters' devDependencies, then each adapter's vitest projects run there against the real
# engine. Counted as one check by scripts/test.sh. KILN_PEER_FLOORS="ai=7.0.50" tries other floors;
# KILN_FLOOR_ADAPTERS="langchain" tests only some adapters.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
command -v pnpm >/dev/null && [ -n "${KILN_RUNTIME_IMAGE:-}" ] || source scripts/setup.sh

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-peer-floors.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The working tree as it is (uncommitted changes included), without node_modules or build output.
git ls-files -z --cached --others --exclude-standard | grep -zv '^\.tools' | tar --null -T - -cf - | tar -xf - -C "$tmp"
node scripts/lib/peer-floors.mjs --pin "$tmp"
echo "peer floors:"; KILN_PEER_FLOORS="${KILN_PEER_FLOORS:-}" node scripts/lib/peer-floors.mjs | sed 's/^/  /'
(cd "$tmp" && pnpm install --no-frozen-lockfile --prefer-offline --reporter=silent)
# What actually got installed (a range could resolve higher if the exact version were missing).
for adapter in langchain vercel-ai mastra; do
  (cd "$tmp/packages/$adapter" && node -e '
    const pkg = require("./package.json");
    for (const name of Object.keys(pkg.peerDependencies ?? {})) {
      const got = require(require.resolve(name + "/package.json", { paths: [process.cwd()] })).version;
      const want = pkg.devDependencies[name];
      console.log(`  ${pkg.name}: ${name} ${got}`);
      if (got !== want) { console.error(`installed ${name} ${got}, wanted the floor ${want}`); process.exit(1); }
    }')
done
cd "$tmp"
status=0
for adapter in ${KILN_FLOOR_ADAPTERS:-langchain vercel-ai mastra}; do
  for config in packages/$adapter/vitest.unit.config.ts packages/$adapter/vitest.config.ts; do
    [ -f "$config" ] || continue
    pnpm exec vitest run -c "$config" --reporter=dot || status=1
  done
  # What users compile against: the sources (tests only run; their mocks follow the newest types).
  (cd "packages/$adapter" && pnpm exec tsc -p tsconfig.build.json --noEmit) ||
    { echo "typecheck of $adapter's sources failed against its floors"; status=1; }
done
exit $status
