#!/usr/bin/env bash
# Kiln as npm users get it. Packs the four packages (pnpm pack), checks the tarballs (LICENSE,
# README links, ranges, source maps), installs them with npm into a fresh project (once with the
# oldest framework versions the peer ranges allow, once with the newest), and in each:
#   - runs every package README's first TypeScript snippet as written (a prelude supplies only
#     what the README leaves to the reader: a scripted model, a chat id), and checks that each
#     process exits on its own within SNIPPET_TIMEOUT seconds;
#   - (oldest project) interrupts a run with SIGINT while its sandbox is in use, then runs again:
#     the second run must work;
#   - (oldest project) builds another app's runtime image on the same engine, runs ensure() and
#     prune() from the installed package, and checks that image survived.
# Counted as one check by scripts/test.sh. KILN_PACKED_VARIANTS="floors" runs only the oldest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
command -v pnpm >/dev/null && [ -n "${KILN_RUNTIME_IMAGE:-}" ] || source scripts/setup.sh
set +e
SNIPPET_TIMEOUT="${SNIPPET_TIMEOUT:-120}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-packed.XXXXXX")"
other_image="kiln-runtime:packed-test-other-$$"
failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }
cleanup() {
  # Only what this script made: its sandboxes (by the names its snippets use) and its image.
  if [ -d "$tmp/project-floors/node_modules/@kiln/core" ]; then
    (cd "$tmp/project-floors" && node --input-type=module -e '
      import { Kiln } from "@kiln/core";
      const kiln = new Kiln();
      for (const name of process.argv.slice(1)) await (await kiln.get(name).catch(() => undefined))?.delete().catch(() => {});
      await kiln.close();' "lc-chat-1" "ai-packed-$$" "mastra-packed-$$" "packed-interrupted-$$") || true
  fi
  docker image rm "$other_image" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build and pack"
pnpm -r --filter './packages/*' run build >/dev/null || { echo "FAILED: build"; exit 1; }
for p in core langchain vercel-ai mastra; do
  (cd "packages/$p" && pnpm pack --pack-destination "$tmp/tarballs" >/dev/null) || fail "pnpm pack of $p"
done
node scripts/lib/check-tarballs.mjs "$tmp"/tarballs/*.tgz || fail "tarball contents"

# Peers to install: every adapter's peers at their floor ("floors") or newest in range ("latest").
peers() {
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const floors = JSON.parse(process.argv[1]); const variant = process.argv[2];
    const out = new Map();
    for (const adapter of ["langchain", "vercel-ai", "mastra"]) {
      const pkg = JSON.parse(readFileSync(`packages/${adapter}/package.json`, "utf8"));
      for (const [name, range] of Object.entries(pkg.peerDependencies)) out.set(name, variant === "floors" ? floors[adapter][name] : range);
    }
    console.log([...out].map(([n, v]) => `${n}@${v}`).join(" "));' "$(node scripts/lib/peer-floors.mjs)" "$1"
}

snippet() { # README's first ```ts block
  awk '/^```ts$/ { on = 1; next } on && /^```$/ { exit } on { print }' "packages/$1/README.md"
}

for variant in ${KILN_PACKED_VARIANTS:-floors latest}; do
  dir="$tmp/project-$variant"
  mkdir -p "$dir"
  echo "== npm project with the $variant framework versions"
  printf '{ "name": "kiln-packed-%s", "private": true, "type": "module" }\n' "$variant" >"$dir/package.json"
  start=$(date +%s)
  # shellcheck disable=SC2046
  (cd "$dir" && npm install --prefer-offline --no-audit --no-fund --loglevel=error "$tmp"/tarballs/*.tgz $(cd "$root" && peers "$variant") zod) ||
    { fail "npm install ($variant)"; continue; }
  echo "installed in $(($(date +%s) - start)) s: $(cd "$dir" && node -e '
    for (const n of ["ai", "@langchain/core", "langchain", "deepagents", "@mastra/core"]) process.stdout.write(`${n}@${require(n + "/package.json").version} `)')"
  cp scripts/packed/scripted-model.ts "$dir/" # the module preludes import (./scripted-model.ts)
  for p in core langchain vercel-ai mastra; do
    { cat "scripts/packed/$p.prelude.ts"; echo; snippet "$p"; } >"$dir/readme-$p.ts"
    t0=$(date +%s%N)
    (cd "$dir" && KILN_PACKED_CHAT="packed-$$" timeout "$SNIPPET_TIMEOUT" node "readme-$p.ts" >"readme-$p.log" 2>&1)
    code=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ $code -eq 124 ]; then
      fail "$variant: the $p README snippet did not exit on its own within ${SNIPPET_TIMEOUT} s"
    elif [ $code -ne 0 ]; then
      fail "$variant: the $p README snippet exited with $code"; tail -n 15 "$dir/readme-$p.log"
    else echo "  $p README snippet: ok, exited by itself after $ms ms"; fi
  done
done

dir="$tmp/project-floors"
if [ -d "$dir/node_modules/@kiln/core" ]; then
  echo "== an interrupted run, then a second one"
  cat >"$dir/interrupted.ts" <<TS
import { Kiln } from "@kiln/core";
const kiln = new Kiln();
const sandbox = await kiln.getOrCreate("packed-interrupted-$$");
console.log("ready");
await sandbox.exec("sleep 30");
console.log("finished");
await kiln.close();
TS
  (cd "$dir" && node interrupted.ts >interrupted-1.log 2>&1) &
  run=$!
  for _ in $(seq 1 300); do grep -q ready "$dir/interrupted-1.log" 2>/dev/null && break; sleep 0.1; done
  kill -INT "$run" 2>/dev/null; wait "$run" 2>/dev/null
  sed -i 's/sleep 30/echo again/' "$dir/interrupted.ts"
  if (cd "$dir" && timeout "$SNIPPET_TIMEOUT" node interrupted.ts >interrupted-2.log 2>&1) && grep -q finished "$dir/interrupted-2.log"; then
    echo "  second run after SIGINT: ok"
  else fail "the run after an interrupted one"; tail -n 15 "$dir/interrupted-2.log"; fi
  echo "== another app's runtime image survives ensure() and prune()"
  printf 'FROM %s\nLABEL kiln.core-version=0.0.0-another-app\n' "$KILN_RUNTIME_IMAGE" | docker build -q -t "$other_image" - >/dev/null ||
    fail "could not build $other_image"
  (cd "$dir" && node --input-type=module -e '
    import { Kiln } from "@kiln/core";
    const kiln = new Kiln();
    const tag = await kiln.images.ensure();
    const removed = await kiln.images.prune();
    console.log(`  ensure(): ${tag}; prune() removed: ${removed.join(", ") || "nothing"}`);
    await kiln.close();') || fail "ensure()/prune() from the installed package"
  docker image inspect "$other_image" >/dev/null 2>&1 && echo "  $other_image survived" || fail "$other_image was removed"
fi

[ $failures -eq 0 ] && echo "packed packages: all checks passed" || echo "packed packages: $failures failed"
[ $failures -eq 0 ]
