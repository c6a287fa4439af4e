#!/usr/bin/env bash
# The whole test suite: unit, privileged (real bpf()), datapath (PROG_TEST_RUN) and end-to-end
# (namespaces, agents, real traffic). Needs root. Installs and builds what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== lint"
npm run --silent lint
if [ -f dist/scripts/codegen-datapath.js ]; then
  echo "== generated datapath layouts are fresh"
  node dist/scripts/codegen-datapath.js --check
fi

echo "== tests (unit, privileged, datapath, end-to-end)"
# TAP on stdout; the failed tests again at the very end, where a shortened log still shows them.
failures="$(mktemp)"
trap 'rm -f "$failures"' EXIT
rc=0
node --test --test-concurrency=1 --test-timeout=1200000 \
  --test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=./dist/scripts/test-failures-reporter.js --test-reporter-destination="$failures" \
  dist/test/ || rc=$?
cat "$failures"
exit "$rc"
