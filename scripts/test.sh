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
node --test --test-concurrency=1 --test-timeout=1200000 dist/test/
