#!/usr/bin/env bash
# Makes sure this machine can build, test and run Kiln. Idempotent: every step checks first and
# does nothing when its part is already there. Sourced by demo.sh, test.sh and bench.sh so they
# share one PATH; run it directly to just prepare a machine.
#
#   1. Node >= 22 (brings Node 24 from the npm registry into .tools/ when the machine's is older)
#   2. pnpm and the workspace's dependencies
#   3. a Docker engine answering (Linux as root: Debian's docker.io, dockerd started in the background)
#   4. the runtime image (kiln.images.ensure(): built once, then found in milliseconds)
#   (on request) postgres: PostgreSQL binaries for the server's storage tests (`setup.sh postgres`)
#   (on request) terminal_tools: tmux and script(1) for the CLI's terminal tests (`setup.sh terminal_tools`)
set -euo pipefail

KILN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KILN_TOOLS="$KILN_ROOT/.tools"
NODE_MAJOR_WANTED=24
PNPM_VERSION=10.34.9

say() { printf '\033[1m[kiln setup]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
is_root_linux() { [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; }
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

apt_install() {
  is_root_linux && command -v apt-get >/dev/null || return 1
  if [ ! -f "$KILN_TOOLS/.apt-updated" ]; then
    apt-get update -qq >&2 && mkdir -p "$KILN_TOOLS" && touch "$KILN_TOOLS/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_node() {
  [ -x "$KILN_TOOLS/node/bin/node" ] && export PATH="$KILN_TOOLS/node/bin:$PATH"
  [ "$(node_major)" -ge 22 ] && return 0
  command -v npm >/dev/null || apt_install nodejs npm || die "Node >= 22 is needed: install it from your package manager or nodejs.org"
  local arch
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) die "no Node $NODE_MAJOR_WANTED build for $(uname -m)" ;; esac
  local os; os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  say "Node $(node -v 2>/dev/null || echo none) is older than 22: installing Node $NODE_MAJOR_WANTED into .tools/node"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-$os-$arch@$NODE_MAJOR_WANTED" >/dev/null)
  mkdir -p "$KILN_TOOLS/node"
  tar -xzf "$tmp"/node-*.tgz -C "$KILN_TOOLS/node" --strip-components=1
  rm -rf "$tmp"
  export PATH="$KILN_TOOLS/node/bin:$PATH"
  [ "$(node_major)" -ge 22 ] || die "Node $NODE_MAJOR_WANTED did not install into .tools/node"
}

ensure_pnpm() {
  [ -x "$KILN_TOOLS/pnpm/node_modules/.bin/pnpm" ] && export PATH="$KILN_TOOLS/pnpm/node_modules/.bin:$PATH"
  if command -v pnpm >/dev/null && [ "$(pnpm --version 2>/dev/null | cut -d. -f1)" -ge 10 ]; then return 0; fi
  say "installing pnpm $PNPM_VERSION into .tools/pnpm"
  npm install --silent --no-audit --no-fund --prefix "$KILN_TOOLS/pnpm" "pnpm@$PNPM_VERSION" >&2
  export PATH="$KILN_TOOLS/pnpm/node_modules/.bin:$PATH"
}

ensure_dependencies() {
  local stamp="$KILN_ROOT/node_modules/.kiln-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$KILN_ROOT/pnpm-lock.yaml" ]; then return 0; fi
  say "installing dependencies (pnpm install)"
  (cd "$KILN_ROOT" && pnpm install --frozen-lockfile --reporter=silent >&2)
  touch "$stamp"
}

docker_answers() { node -e '
  const s = require("node:net").connect(process.env.DOCKER_SOCK, () => { s.end("GET /_ping HTTP/1.0\r\n\r\n"); });
  let b = ""; s.on("data", (d) => (b += d)); s.on("end", () => process.exit(/^HTTP\/1\.[01] 200/.test(b) ? 0 : 1));
  s.on("error", () => process.exit(1)); setTimeout(() => process.exit(1), 3000);' ; }

ensure_docker() {
  # A remote or rootless engine named by DOCKER_HOST is the user's business: trust it.
  if [ -n "${DOCKER_HOST:-}" ]; then return 0; fi
  export DOCKER_SOCK=/var/run/docker.sock
  [ -S "$DOCKER_SOCK" ] && docker_answers && return 0
  is_root_linux || die "no Docker engine answers at $DOCKER_SOCK: start Docker (Docker Desktop, colima, or 'sudo systemctl start docker'), or set DOCKER_HOST"
  if ! command -v dockerd >/dev/null; then
    say "no Docker engine: installing Debian's docker.io"
    apt_install docker.io || die "could not install docker.io with apt-get"
  fi
  if ! pgrep -x dockerd >/dev/null; then
    say "starting dockerd in the background (log: /var/log/kiln-dockerd.log)"
    nohup dockerd >/var/log/kiln-dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 150); do
    [ -S "$DOCKER_SOCK" ] && docker_answers && return 0
    sleep 0.2
  done
  die "dockerd did not answer within 30 s: see /var/log/kiln-dockerd.log"
}

ensure_image_tools() {
  # Building the runtime image without a registry bootstraps a Debian base: debootstrap on Linux.
  command -v debootstrap >/dev/null && return 0
  is_root_linux && apt_install debootstrap || true
}

ensure_postgres() {
  # Only installs: the server's PostgreSQL tests start their own server (initdb + pg_ctl in a
  # temp dir, on a free port) and stop it. Not in the default steps; test.sh asks for it.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  say "installing PostgreSQL (Debian's postgresql) for the server's storage tests"
  apt_install postgresql || die "could not install postgresql: the server's PostgreSQL tests need initdb and pg_ctl"
}

ensure_terminal_tools() {
  # The CLI's tests drive a real terminal: tmux (type keys, read the screen) and script(1) (a pty).
  command -v tmux >/dev/null && command -v script >/dev/null && return 0
  say "installing tmux and script(1) for the CLI's terminal tests"
  apt_install tmux bsdutils || die "the CLI's terminal tests need tmux and script(1): install them"
}

ensure_runtime_image() {
  KILN_RUNTIME_IMAGE="$(node "$KILN_ROOT/scripts/ensure-image.ts")"
  export KILN_RUNTIME_IMAGE
}

# With arguments, only those steps run (e.g. `setup.sh node pnpm`); sourced, PATH carries over.
for step in "${@:-node pnpm dependencies docker image_tools runtime_image}"; do
  for s in $step; do "ensure_$s"; done
done
