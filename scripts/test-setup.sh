#!/usr/bin/env bash
# Setup with a different global pnpm: a newcomer with pnpm 12 on PATH runs scripts/setup.sh on a
# fresh copy of this checkout (in a temp dir) and gets the pinned pnpm and an installed workspace.
# Counted as one check by scripts/test.sh. KILN_TEST_GLOBAL_PNPM picks the global one (default 12).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
global_version="${KILN_TEST_GLOBAL_PNPM:-12}"
pinned="$(sed -n 's/.*"packageManager": *"pnpm@\([^"+]*\).*/\1/p' package.json)"
node_bin="$(dirname "$(command -v node)")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-setup-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The working tree as a newcomer clones it: no .tools (a worktree may have it as a symlink).
mkdir -p "$tmp/repo"
git ls-files -z --cached --others --exclude-standard | grep -zv '^\.tools' | tar --null -T - -cf - | tar -xf - -C "$tmp/repo"
[ ! -e "$tmp/repo/.tools" ] || { echo "FAILED: .tools was copied"; exit 1; }
npm install --silent --no-audit --no-fund --prefix "$tmp/global" "pnpm@$global_version" >/dev/null

# Only the global pnpm, Node and the system on PATH: nothing of this checkout's .tools.
export PATH="$tmp/global/node_modules/.bin:$node_bin:/usr/local/bin:/usr/bin:/bin"
got_global="$(cd "$tmp" && pnpm --version)"
echo "global pnpm: $got_global; package.json pins pnpm $pinned"
case "$got_global" in "$pinned") echo "FAILED: the global pnpm is the pinned one; the test proves nothing"; exit 1 ;; esac

cd "$tmp/repo"
# The steps a newcomer needs before `pnpm test`: Node, pnpm, the workspace's dependencies.
bash scripts/setup.sh node pnpm dependencies
used="$(bash -c 'source scripts/setup.sh node pnpm >/dev/null 2>&1; pnpm --version')"
echo "pnpm after setup: $used"
[ "$used" = "$pinned" ] || { echo "FAILED: setup left pnpm $used on PATH, not the pinned $pinned"; exit 1; }
[ -f node_modules/.kiln-installed ] && [ -d packages/core/node_modules/tar-stream ] ||
  { echo "FAILED: the workspace's dependencies are not installed"; exit 1; }
echo "setup with a global pnpm $got_global: ok"
