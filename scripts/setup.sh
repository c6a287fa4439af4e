#!/usr/bin/env bash
# Installs what cilium-ts needs on a fresh Debian machine (as root) and builds it.
# Idempotent: skips the package manager when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(clang-19 llvm-19 libbpf-dev bpftool iproute2 iputils-ping curl make iperf3 etcd-server
  python3-grpcio python3-grpc-tools prometheus iptables
  podman runc containernetworking-plugins busybox-static
  chromium fonts-dejavu-core)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: build (eBPF objects + TypeScript)"
npm run --silent build
chmod +x dist/src/cli/main.js dist/src/cni/plugin.js 2>/dev/null || true
bash scripts/install-cli.sh
