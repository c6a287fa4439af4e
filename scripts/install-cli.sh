#!/usr/bin/env bash
# Puts `cilium-ts` on the PATH: a small wrapper in $CILIUM_TS_BIN_DIR (default /usr/local/bin) that
# runs this checkout's compiled CLI with the node that ran the install: the bundle
# (dist/src/cli-bundle/, scripts/build-cli.ts; it starts faster) while it is newer than the last tsc
# build, else dist/src/cli/main.js, so a `npm run build:ts` alone never leaves a stale bundle in use.
# CILIUM_TS_OUT_DIR names another out dir than dist/, CILIUM_TS_CLI one entry to run instead.
# Idempotent: the wrapper is rewritten only when it would change, and a `cilium-ts` that this script
# did not write is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${CILIUM_TS_BIN_DIR:-/usr/local/bin}"
out_dir="${CILIUM_TS_OUT_DIR:-$PWD/dist}"
node_bin="$(command -v node)"
target="$bin_dir/cilium-ts"
marker="# cilium-ts wrapper (scripts/install-cli.sh)"

if [ -n "${CILIUM_TS_CLI:-}" ]; then
  runs="$CILIUM_TS_CLI"
  wrapper="#!/bin/sh
$marker
exec \"$node_bin\" \"$CILIUM_TS_CLI\" \"\$@\""
else
  runs="$out_dir/src/cli-bundle/cilium-ts.js while newer than $out_dir/.tsbuildinfo, else $out_dir/src/cli/main.js"
  wrapper="#!/bin/sh
$marker
cli=\"$out_dir/src/cli/main.js\"
[ \"$out_dir/src/cli-bundle/cilium-ts.js\" -nt \"$out_dir/.tsbuildinfo\" ] && cli=\"$out_dir/src/cli-bundle/cilium-ts.js\"
exec \"$node_bin\" \"\$cli\" \"\$@\""
fi

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
echo "setup: installed $target -> $runs"
