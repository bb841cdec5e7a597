#!/usr/bin/env bash
# Kiln's main job: installs what is missing (scripts/setup.sh), then runs a real sandbox with timings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec node examples/quickstart.ts
