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
# Two test files at a time (CILIUM_TS_TEST_CONCURRENCY=1: one): every file names its labs,
# namespaces, pins and sockets uniquely, and most of an end-to-end file's time is waiting (an etcd
# outage of 60 s, a lease to expire, a denied probe's timeout), so two share the machine's two CPUs
# well: ~19 minutes instead of ~27.
failures="$(mktemp)"
trap 'rm -f "$failures"' EXIT
rc=0
node --test --test-concurrency="${CILIUM_TS_TEST_CONCURRENCY:-2}" --test-timeout=1200000 \
  --test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=./dist/scripts/test-failures-reporter.js --test-reporter-destination="$failures" \
  dist/test/ || rc=$?
cat "$failures"
exit "$rc"
