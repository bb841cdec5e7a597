#!/usr/bin/env bash
# Makes sure this machine can build, test and run Kiln. Idempotent: every step checks first and
# does nothing when its part is already there. Sourced by demo.sh, test.sh and bench.sh so they
# share one PATH; run it directly to just prepare a machine.
#
#   1. Node >= 22 (brings Node 24 from the npm registry into .tools/ when the machine's is older)
#   2. pnpm and the workspace's dependencies
#   3. storage (opt-in: `setup.sh storage`): a btrfs data root with simple quotas for the dockerd
#      this script starts, so resources.diskMb (and the default disk cap) work on ext4 hosts: a
#      loop image; restarts only a dockerd this script started, never a user's
#   4. gvisor: Debian's runsc from bookworm-backports, registered as the engine's "runsc" runtime
#   5. a Docker engine answering (Linux as root: Debian's docker.io, dockerd started in the background)
#   6. the runtime image (kiln.images.ensure(): built once, then found in milliseconds)
#   7. docs: the documentation site `kiln serve` shows at /docs (`pnpm docs:build`; skipped when up to date)
#   8. dashboard: packages/dashboard built to dist/ (what `kiln serve` serves at /), when older than its sources
#   (on request) postgres: PostgreSQL binaries for the server's storage tests (`setup.sh postgres`)
#   (on request) terminal_tools: tmux and script(1) for the CLI's terminal tests (`setup.sh terminal_tools`)
#   (on request) chromium: Debian's chromium for the dashboard's browser tests (`setup.sh chromium`)
#   (on request) python_sdk: Debian's python3-httpx and python3-pytest for clients/python (`setup.sh python_sdk`)
#
# Engine settings go to $KILN_DAEMON_JSON (default /etc/docker/daemon.json); KILN_DOCKER_STORAGE=default
# skips the btrfs data root. A second engine for experiments: set KILN_DAEMON_JSON (with its own
# "hosts", "exec-root", "pidfile") and DOCKER_SOCK to match.
set -euo pipefail

KILN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KILN_TOOLS="$KILN_ROOT/.tools"
NODE_MAJOR_WANTED=24
# The pnpm package.json pins ("packageManager"): setup always uses exactly this one (see ensure_pnpm).
PNPM_VERSION="$(sed -n 's/.*"packageManager": *"pnpm@\([^"+]*\).*/\1/p' "$KILN_ROOT/package.json")"

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
  # Exactly the pinned pnpm, whatever is installed globally: a different one (pnpm 11 or 12) would
  # try to switch itself to the pinned version by downloading @pnpm/exe, which fails offline or when
  # that build does not exist. It lives in .tools/pnpm-<version>; a global pnpm is left alone.
  [ -n "$PNPM_VERSION" ] || die "package.json has no \"packageManager\": \"pnpm@<version>\""
  local dir="$KILN_TOOLS/pnpm-$PNPM_VERSION"
  if [ "$("$dir/node_modules/.bin/pnpm" --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
    say "installing pnpm $PNPM_VERSION (the version package.json pins) into .tools/pnpm-$PNPM_VERSION"
    npm install --silent --no-audit --no-fund --prefix "$dir" "pnpm@$PNPM_VERSION" >&2
  fi
  export PATH="$dir/node_modules/.bin:$PATH"
  [ "$(pnpm --version)" = "$PNPM_VERSION" ] || die "pnpm $PNPM_VERSION did not install into $dir"
}

ensure_dependencies() {
  local stamp="$KILN_ROOT/node_modules/.kiln-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$KILN_ROOT/pnpm-lock.yaml" ]; then return 0; fi
  say "installing dependencies (pnpm install)"
  (cd "$KILN_ROOT" && pnpm install --frozen-lockfile --reporter=silent >&2)
  touch "$stamp"
}

KILN_DAEMON_JSON="${KILN_DAEMON_JSON:-/etc/docker/daemon.json}"
KILN_DOCKERD_LOG="${KILN_DOCKERD_LOG:-/var/log/kiln-dockerd.log}"
# The btrfs data root: a sparse loop image (it takes host disk only as sandboxes write, up to its size).
KILN_DOCKER_IMAGE_FILE="${KILN_DOCKER_IMAGE_FILE:-/var/lib/kiln/docker-data.img}"
KILN_DOCKER_DATA_ROOT="${KILN_DOCKER_DATA_ROOT:-/var/lib/kiln/docker}"
KILN_DOCKER_DATA_GB="${KILN_DOCKER_DATA_GB:-64}"

# Reads (one arg) or sets (two args: key, JSON value) a top-level key of the engine's daemon.json.
daemon_json() {
  KEY="$1" VALUE="${2:-}" FILE="$KILN_DAEMON_JSON" node -e '
    const fs = require("node:fs"); const { FILE, KEY, VALUE } = process.env;
    const config = fs.existsSync(FILE) ? JSON.parse(fs.readFileSync(FILE, "utf8") || "{}") : {};
    if (!VALUE) { const v = config[KEY]; process.stdout.write(v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v)); process.exit(0); }
    const next = JSON.parse(VALUE);
    const old = config[KEY];
    const merged = Array.isArray(next) && Array.isArray(old) ? [...new Set([...old, ...next])]
      : typeof next === "object" && !Array.isArray(next) && typeof old === "object" ? { ...old, ...next } : next;
    if (JSON.stringify(config[KEY]) === JSON.stringify(merged)) process.exit(0);
    config[KEY] = merged;
    fs.mkdirSync(require("node:path").dirname(FILE), { recursive: true });
    fs.writeFileSync(FILE, JSON.stringify(config, null, 2) + "\n");'
}

# The pid of the dockerd this configuration belongs to, if one runs.
dockerd_pid() {
  local pidfile; pidfile="$(daemon_json pidfile)"; pidfile="${pidfile:-/var/run/docker.pid}"
  local pid; pid="$(cat "$pidfile" 2>/dev/null || true)"
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

# True when that dockerd was started by this script (its output goes to our log), so we may restart it.
dockerd_is_ours() { [ "$(readlink "/proc/$1/fd/1" 2>/dev/null)" = "$KILN_DOCKERD_LOG" ]; }

# bookworm-backports from the machine's own Debian mirror (read at run time, never written in the repository).
ensure_backports() {
  local list=/etc/apt/sources.list.d/kiln-backports.sources
  [ -f "$list" ] && return 0
  grep -q bookworm /etc/os-release 2>/dev/null || return 1
  local src=/etc/apt/sources.list.d/debian.sources uri key
  uri="$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)"
  key="$(awk '/^Signed-By:/ {print $2; exit}' "$src" 2>/dev/null || true)"
  [ -n "$uri" ] || uri="$(awk '/^deb / && / bookworm / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$uri" ] || return 1
  say "adding bookworm-backports from $uri"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n%s' "$uri" "${key:+Signed-By: $key
}" >"$list"
  rm -f "$KILN_TOOLS/.apt-updated"
}

ensure_storage() {
  if [ -n "${DOCKER_HOST:-}" ] || [ "${KILN_DOCKER_STORAGE:-btrfs}" = default ] || ! is_root_linux; then return 0; fi
  local pid; pid="$(dockerd_pid || true)"
  local want="$KILN_DOCKER_DATA_ROOT"
  if [ -n "$pid" ] && ! dockerd_is_ours "$pid"; then
    [ "$(daemon_json data-root)" = "$want" ] || say "note: the running dockerd was not started by Kiln's setup: its storage is left alone (resources.diskMb needs a btrfs data root, see docs/developing.md)"
    return 0
  fi
  if ! grep -qw btrfs /proc/filesystems || [ ! -e /dev/loop-control ]; then
    say "note: no btrfs or no loop devices in this kernel: sandboxes get no disk cap (resources.diskMb unsupported)"
    return 0
  fi
  # Simple quotas (mkfs -O squota, btrfs-progs >= 6.7) charge each sandbox only for what it writes, bytes and inodes alike.
  if ! mkfs.btrfs -O list-all 2>&1 | grep -q squota; then
    ensure_backports && apt_install -t bookworm-backports btrfs-progs || apt_install btrfs-progs || true
  fi
  if ! mountpoint -q "$want"; then
    mkdir -p "$want" "$(dirname "$KILN_DOCKER_IMAGE_FILE")"
    if [ ! -f "$KILN_DOCKER_IMAGE_FILE" ]; then
      say "making the engine's btrfs data root: $KILN_DOCKER_IMAGE_FILE (sparse, ${KILN_DOCKER_DATA_GB} GiB at most)"
      truncate -s "${KILN_DOCKER_DATA_GB}G" "$KILN_DOCKER_IMAGE_FILE"
      mkfs.btrfs -q -O squota "$KILN_DOCKER_IMAGE_FILE" >/dev/null 2>&1 || { rm -f "$KILN_DOCKER_IMAGE_FILE"; say "note: mkfs.btrfs -O squota failed: no disk cap"; return 0; }
    fi
    mount -o loop "$KILN_DOCKER_IMAGE_FILE" "$want" || { say "note: could not mount $KILN_DOCKER_IMAGE_FILE: no disk cap"; return 0; }
  fi
  daemon_json data-root "\"$want\""
  daemon_json storage-driver '"btrfs"'
  # Tells Kiln this engine's quotas are simple quotas it may apply to every sandbox (the default disk cap).
  daemon_json labels '["kiln.storage=btrfs-squota"]'
  if [ -n "$pid" ] && [ "$(docker -H "unix://$DOCKER_SOCK" info --format '{{.DockerRootDir}}' 2>/dev/null)" != "$want" ]; then
    say "restarting the dockerd Kiln's setup started (pid $pid) on the btrfs data root $want; its containers stop, its images stay in the old data root"
    kill "$pid"
    for _ in $(seq 1 150); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
  fi
}

ensure_gvisor() {
  if [ -n "${DOCKER_HOST:-}" ] || ! is_root_linux; then return 0; fi
  if ! command -v runsc >/dev/null; then
    say "installing gVisor's runsc from bookworm-backports"
    { ensure_backports && apt_install -t bookworm-backports runsc; } || { say "note: runsc is not installable here: runtime \"gvisor\" unavailable"; return 0; }
  fi
  # --network=none: gVisor's own network stack fails on these kernels, so gVisor sandboxes get none.
  daemon_json runtimes "{\"runsc\": {\"path\": \"$(command -v runsc)\", \"runtimeArgs\": [\"--network=none\"]}}"
  local pid; pid="$(dockerd_pid || true)"
  if [ -n "$pid" ] && ! docker -H "unix://$DOCKER_SOCK" info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
    say "registering runsc with the running dockerd (SIGHUP reloads runtimes; containers keep running)"
    kill -HUP "$pid"
  fi
}

docker_answers() { node -e '
  const s = require("node:net").connect(process.env.DOCKER_SOCK, () => { s.end("GET /_ping HTTP/1.0\r\n\r\n"); });
  let b = ""; s.on("data", (d) => (b += d)); s.on("end", () => process.exit(/^HTTP\/1\.[01] 200/.test(b) ? 0 : 1));
  s.on("error", () => process.exit(1)); setTimeout(() => process.exit(1), 3000);' ; }

ensure_docker() {
  # A remote or rootless engine named by DOCKER_HOST is the user's business: trust it.
  if [ -n "${DOCKER_HOST:-}" ]; then return 0; fi
  [ -S "$DOCKER_SOCK" ] && docker_answers && return 0
  is_root_linux || die "no Docker engine answers at $DOCKER_SOCK: start Docker (Docker Desktop, colima, or 'sudo systemctl start docker'), or set DOCKER_HOST"
  if ! command -v dockerd >/dev/null; then
    say "no Docker engine: installing Debian's docker.io"
    apt_install docker.io || die "could not install docker.io with apt-get"
  fi
  if [ -z "$(dockerd_pid || true)" ]; then
    say "starting dockerd in the background (config: $KILN_DAEMON_JSON, log: $KILN_DOCKERD_LOG)"
    local config=(); [ -f "$KILN_DAEMON_JSON" ] && config=(--config-file "$KILN_DAEMON_JSON")
    nohup dockerd "${config[@]}" >>"$KILN_DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 150); do
    [ -S "$DOCKER_SOCK" ] && docker_answers && return 0
    sleep 0.2
  done
  die "dockerd did not answer within 30 s: see $KILN_DOCKERD_LOG"
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

ensure_test_hosts() {
  # The allow-list tests make their own TLS test hosts (openssl: a test CA) and install a package
  # with pip inside a sandbox from Debian's pip wheel (the runtime image has no pip).
  command -v openssl >/dev/null && ls /usr/share/python-wheels/pip-*.whl >/dev/null 2>&1 && return 0
  say "installing openssl and Debian's pip wheel for the network allow-list tests"
  apt_install openssl python3-pip-whl || die "the allow-list tests need openssl and python3-pip-whl: install them"
}

ensure_python_sdk() {
  # clients/python (the Python SDK) runs on Debian's own /usr/bin/python3 with Debian's httpx
  # (its one dependency) and pytest; never the pyenv python3 that may come first on PATH.
  /usr/bin/python3 -c 'import httpx, pytest' 2>/dev/null && return 0
  say "installing Debian's python3-httpx and python3-pytest for the Python SDK's tests"
  apt_install python3-httpx python3-pytest || die "the Python SDK's tests need python3-httpx and python3-pytest: install them"
}

ensure_dashboard() {
  # The dashboard's static build (Vite); skipped while dist/ is newer than every source file (and
  # than core's vocabulary.ts, which it bundles).
  local dir="$KILN_ROOT/packages/dashboard"
  [ -d "$dir" ] || return 0
  if [ -f "$dir/dist/index.html" ] && [ -z "$(find "$dir/src" "$dir/public" "$dir/index.html" "$dir/vite.config.ts" "$KILN_ROOT/packages/core/src/vocabulary.ts" -newer "$dir/dist/index.html" -print -quit)" ]; then
    return 0
  fi
  say "building the dashboard (packages/dashboard/dist)"
  (cd "$dir" && pnpm run build >&2) || die "the dashboard did not build: run 'pnpm --filter @kiln/dashboard build' to see why"
}

ensure_chromium() {
  # The dashboard's browser tests drive Debian's chromium headless (playwright-core, no downloaded browser).
  [ -x "${KILN_CHROMIUM:-/usr/bin/chromium}" ] && return 0
  say "installing Debian's chromium for the dashboard's browser tests"
  apt_install chromium || die "the dashboard's browser tests need chromium (/usr/bin/chromium, or set KILN_CHROMIUM)"
}

ensure_runtime_image() {
  KILN_RUNTIME_IMAGE="$(node "$KILN_ROOT/scripts/ensure-image.ts")"
  export KILN_RUNTIME_IMAGE
}

ensure_docs() {
  # Rebuilt only when docs/ or the packages' sources changed since the last build; a failed build
  # (a broken link between guides) is reported, not fatal: the tests fail on it instead.
  (cd "$KILN_ROOT" && node packages/docs-site/src/cli.ts --if-changed >&2) ||
    say "note: the documentation site did not build (see above): kiln serve's /docs explains how to build it"
}

# With arguments, only those steps run (e.g. `setup.sh node pnpm`); sourced, PATH carries over.
export DOCKER_SOCK="${DOCKER_SOCK:-/var/run/docker.sock}"
# `storage` (the btrfs data root) is opt-in until Docker 20.10's btrfs driver costs are solved: see docs/developing.md.
for step in "${@:-node pnpm dependencies gvisor docker image_tools runtime_image docs dashboard}"; do
  for s in $step; do "ensure_$s"; done
done
