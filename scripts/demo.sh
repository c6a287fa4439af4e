#!/usr/bin/env bash
# The demo: installs and builds what it needs, then shows eBPF programs filtering real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
if [ -x examples/starwars/demo.sh ]; then
  exec bash examples/starwars/demo.sh
fi
exec node dist/src/cli/main.js selfcheck
