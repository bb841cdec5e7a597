#!/usr/bin/env bash
# `pnpm bench`: installs what is missing, then runs the benchmarks (bench/run.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec node bench/run.ts
