#!/usr/bin/env bash
# The whole test suite: lint, typecheck, unit and integration tests (real Docker engine),
# the in-sandbox agent's own tests. Installs what it needs first (scripts/setup.sh).
# Ends with one line CI reads: "N passed, N failed[, N skipped]"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh || exit 1
ensure_postgres || exit 1   # the server's storage tests start their own PostgreSQL
ensure_terminal_tools || exit 1   # the CLI's tests drive a real terminal (tmux, script)
ensure_python_sdk || exit 1   # clients/python: Debian's python3-httpx and python3-pytest
ensure_test_hosts || exit 1   # the allow-list tests' TLS test hosts (openssl) and Debian's pip wheel
ensure_chromium || exit 1   # the dashboard's browser tests: Debian's headless chromium
ensure_dashboard || exit 1   # ...against the dashboard's build (setup.sh builds it; again here if sources changed)
# setup.sh turns on errexit; here every step must run and be counted.
set +e

out=.kiln/test-results
rm -rf "$out" && mkdir -p "$out"
passed=0 failed=0 skipped=0
# Every failure by name, printed again just above the final line: CI keeps only the tail of a run.
failures=()
note_failure() { failures+=("$1"); }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
check() { # a named check that counts as one test: check NAME COMMAND...
  local name=$1; shift
  step "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; note_failure "$name"; fi
}
vitest_suite() { # vitest_suite TITLE RESULT-NAME [vitest args...]: runs it and adds its counts
  local title=$1 json="$PWD/$out/$2.json"; shift 2
  step "$title"
  pnpm exec vitest run "$@" --reporter=default --reporter=json --outputFile.json="$json"
  local code=$? p f s
  if [ ! -f "$json" ]; then failed=$((failed + 1)); echo "FAILED: $title wrote no results"; note_failure "$title: wrote no results"; return; fi
  read -r p f s < <(node -e '
    const r = require(process.argv[1]);
    console.log(r.numPassedTests, r.numFailedTests, r.numPendingTests + r.numTodoTests);' "$json")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  # Each failed test as "file > test: first line of its error".
  local line
  while IFS= read -r line; do note_failure "$line"; done < <(node -e '
    const path = require("node:path"), r = require(process.argv[1]);
    for (const file of r.testResults)
      for (const t of file.assertionResults)
        if (t.status === "failed") {
          const why = String(t.failureMessages?.[0] ?? "").split("\n")[0].slice(0, 200);
          console.log(`${path.relative(process.cwd(), file.name)} > ${t.fullName}: ${why}`);
        }
      ' "$json")
  # A crash outside any test (e.g. in global setup) fails the run even with no failed test.
  if [ "$code" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: $title exited $code"; note_failure "$title: exited $code"; fi
}

# Whole-flow checks, each counted as one test: setup with a newer global pnpm, the adapters
# against their oldest framework versions, and the packed packages installed from npm. They spend
# most of their time in npm installs, so they run in the background beside the suites below (each
# in its own temporary copy or project, with its own sandbox labels).
declare -A flow=()
flow_check() { # flow_check NAME COMMAND...: starts it now, counted at the end
  local name=$1; shift
  "$@" >"$out/flow-${name%% *}.log" 2>&1 &
  flow[$name]=$!
}
flow_check "setup with a global pnpm 12 (scripts/test-setup.sh)" bash scripts/test-setup.sh
flow_check "adapters on their peer floors (scripts/test-peer-floors.sh)" bash scripts/test-peer-floors.sh
flow_check "packed packages installed with npm (scripts/test-packed.sh)" bash scripts/test-packed.sh

check "lint and format (biome)" pnpm exec biome ci .
check "typecheck" pnpm -r --no-bail run typecheck

vitest_suite "vitest: unit and integration tests, every package" vitest
vitest_suite "remote mode: the remote client, and the adapters' suites, through a real Kiln server (tests/remote)" remote -c tests/remote/vitest.config.ts
vitest_suite "kube-sim: the test-only Kubernetes API server, through the real @kubernetes/client-node (tests/kube-sim)" kube-sim -c tests/kube-sim/vitest.config.ts
vitest_suite "Kubernetes engine contract: core's lifecycle, code, files, exec and pool tests on kubernetes() against kube-sim" k8s-contract -c packages/kubernetes/vitest.contract.config.ts

step "docs: every code sample of docs/*.md and the READMEs (tests/docs/run.ts, real engine and server)"
node tests/docs/run.ts >"$out/docs-samples.log" 2>&1
docs_exit=$?
grep -E '^(✗|──)' "$out/docs-samples.log" | head -40
docs_summary=$(tail -n 1 "$out/docs-samples.log")
echo "  $docs_summary"
read -r dr ds df < <(sed -n 's/^\([0-9]*\) samples ran, \([0-9]*\) skipped, \([0-9]*\) failed.*/\1 \2 \3/p' <<<"$docs_summary")
dr=${dr:-0} ds=${ds:-0} df=${df:-0}
if [ "$dr" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: the docs samples did not run (log: $out/docs-samples.log)"; note_failure "docs samples: did not run"; fi
while IFS= read -r line; do note_failure "docs sample $line"; done < <(grep -E '^✗' "$out/docs-samples.log" | head -20)
passed=$((passed + dr - df)); failed=$((failed + df)); skipped=$((skipped + ds))
[ "$docs_exit" -ne 0 ] && [ "$df" -eq 0 ] && failed=$((failed + 1)) && note_failure "docs samples: exited $docs_exit"

step "in-sandbox agent (python unittest, inside the runtime image: the sandbox's own Python)"
docker run --rm --network none -v "$PWD/packages/core/runtime:/opt/src:ro" "$KILN_RUNTIME_IMAGE" \
  python3 -m unittest discover -s /opt/src/tests -p 'test_*.py' >"$out/agent.log" 2>&1
tail -n 4 "$out/agent.log"
ran=$(sed -n 's/^Ran \([0-9]*\) tests\?.*/\1/p' "$out/agent.log" | tail -1)
fails=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$out/agent.log" | tail -1)
errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$out/agent.log" | tail -1)
skips=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' "$out/agent.log" | tail -1)
ran=${ran:-0} fails=${fails:-0} errors=${errors:-0} skips=${skips:-0}
if [ "$ran" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: the agent tests did not run"; note_failure "agent tests: did not run"; fi
while IFS= read -r line; do note_failure "agent $line"; done < <(grep -E '^(FAIL|ERROR): ' "$out/agent.log" | head -20)
passed=$((passed + ran - fails - errors - skips)); failed=$((failed + fails + errors)); skipped=$((skipped + skips))

step "JavaScript kernel (node:test)"
node --test --test-reporter=tap packages/core/runtime/tests/*.test.mjs >"$out/kernel-js.tap" 2>&1
grep -E '^# (pass|fail|skipped)' "$out/kernel-js.tap" | sed 's/^# /  /'
kp=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$out/kernel-js.tap"); kf=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$out/kernel-js.tap")
ks=$(sed -n 's/^# skipped \([0-9]*\)/\1/p' "$out/kernel-js.tap")
kp=${kp:-0} kf=${kf:-0} ks=${ks:-0}
if [ "$kp" -eq 0 ] && [ "$kf" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: the kernel tests did not run"; note_failure "kernel tests: did not run"; fi
while IFS= read -r line; do note_failure "kernel $line"; done < <(grep -E '^ *not ok ' "$out/kernel-js.tap" | head -20)
passed=$((passed + kp)); failed=$((failed + kf)); skipped=$((skipped + ks))

# The whole-flow checks started in the background above: wait for each and count it.
for name in "${!flow[@]}"; do
  wait "${flow[$name]}"
  code=$?
  step "$name"
  tail -n 5 "$out/flow-${name%% *}.log"
  if [ "$code" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name (log: $out/flow-${name%% *}.log)"; note_failure "$name"; fi
done

step "Python SDK (pytest on Debian's /usr/bin/python3, against its own kiln serve)"
# pytest's summary line, e.g. "1 failed, 37 passed, 2 skipped in 70.1s"; exit 5 = no tests ran.
(cd clients/python && /usr/bin/python3 -m pytest -q -p no:cacheprovider) >"$out/pysdk.log" 2>&1
py_exit=$?
tail -n 3 "$out/pysdk.log"
py_summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$out/pysdk.log" | tail -1)
count() { sed -n "s/.*[^0-9]\([0-9][0-9]*\) $1.*/\1/p" <<<" $py_summary" | head -1; }
pp=$(count passed) pf=$(count failed) pe=$(count error) ps=$(count skipped)
pp=${pp:-0} pf=${pf:-0} pe=${pe:-0} ps=${ps:-0}
passed=$((passed + pp)); failed=$((failed + pf + pe)); skipped=$((skipped + ps))
if [ "$py_exit" -eq 5 ] || [ "$pp" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: the Python SDK's tests did not run"; note_failure "Python SDK: did not run";
elif [ "$py_exit" -ne 0 ] && [ "$pf" -eq 0 ] && [ "$pe" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: pytest exited $py_exit"; note_failure "Python SDK: pytest exited $py_exit"; fi
while IFS= read -r line; do note_failure "Python SDK $line"; done < <(grep -E '^(FAILED|ERROR) ' "$out/pysdk.log" | head -20)

if [ "${#failures[@]}" -gt 0 ]; then
  step "failures"
  printf '  %s\n' "${failures[@]}"
fi

echo
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
