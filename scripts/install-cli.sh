#!/usr/bin/env bash
# Puts `cilium-ts` on the PATH: a small wrapper in $CILIUM_TS_BIN_DIR (default /usr/local/bin) that
# runs this checkout's compiled CLI with the node that ran the install. Idempotent: the wrapper is
# rewritten only when it would change, and a `cilium-ts` that this script did not write is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${CILIUM_TS_BIN_DIR:-/usr/local/bin}"
cli="${CILIUM_TS_CLI:-$PWD/dist/src/cli/main.js}"
node_bin="$(command -v node)"
target="$bin_dir/cilium-ts"
marker="# cilium-ts wrapper (scripts/install-cli.sh)"

wrapper="#!/bin/sh
$marker
exec \"$node_bin\" \"$cli\" \"\$@\""

if [ -e "$target" ] || [ -L "$target" ]; then
  if ! grep -qF "$marker" "$target" 2>/dev/null; then
    echo "setup: $target exists and was not installed by cilium-ts; leaving it" >&2
    exit 0
  fi
  if [ "$(cat "$target")" = "$wrapper" ]; then
    exit 0
  fi
fi

mkdir -p "$bin_dir"
tmp="$(mktemp "$bin_dir/.cilium-ts.XXXXXX")"
printf '%s\n' "$wrapper" >"$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$target"
echo "setup: installed $target -> $cli"
