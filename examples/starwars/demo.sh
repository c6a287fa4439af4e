#!/usr/bin/env bash
# Star Wars demo: the deathstar only lets empire ships land (L3/L4 policy enforced in eBPF), then
# only lets them request a landing (L7: HTTP through the node's proxy, Hubble showing the requests).
# Brings up a one-node lab named "starwars" with cluster DNS, deploys the deathstar Service and
# Deployment and the ships, shows both ships landing through the Service's name (socket-LB picks
# a deathstar pod at connect), applies the policy and shows the tiefighter landing and the xwing
# dropped, with the monitor's lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLI=(node dist/src/cli/main.js)
export CILIUM_TS_LAB=starwars
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
land() {
  local ship=$1
  if "${CLI[@]}" lab exec "$ship" -- curl -s -m 1 -XPOST deathstar.default.svc.cluster.local/v1/request-landing >/dev/null; then
    echo "$ship: Ship landed"
  else
    echo "$ship: no answer (dropped)"
  fi
}

"${CLI[@]}" lab down >/dev/null 2>&1 || true
step "lab up (one node: a network namespace with its agent; cluster DNS)"
"${CLI[@]}" lab up --nodes 1 --dns
step "deploy the deathstar Service and Deployment, tiefighter and xwing"
"${CLI[@]}" lab apply -f examples/starwars/starwars.yaml
"${CLI[@]}" lab get pods
"${CLI[@]}" lab get svc
"${CLI[@]}" service list

step "no policy yet: every ship can land"
land tiefighter
land xwing

step "apply the L3/L4 policy: only org=empire may reach the deathstar on TCP 80"
cat examples/starwars/sw_l3_l4_policy.yaml | grep -v '^#'
"${CLI[@]}" lab apply -f examples/starwars/sw_l3_l4_policy.yaml
"${CLI[@]}" endpoint list

MON=$(mktemp)
"${CLI[@]}" monitor >"$MON" 2>/dev/null &
MON_PID=$!
trap 'kill $MON_PID 2>/dev/null || true; rm -f "$MON"' EXIT
sleep 0.5

step "with the policy"
land tiefighter
land xwing
sleep 0.5
kill $MON_PID 2>/dev/null || true
wait $MON_PID 2>/dev/null || true

step "cilium-ts monitor saw"
grep -E 'tiefighter|xwing' "$MON" | grep -E 'SYN|drop' || cat "$MON"

step "a deathstar pod's policy map (bpf policy get)"
DEATHSTAR_POD=$("${CLI[@]}" lab get pods -o name | grep deathstar | head -1)
"${CLI[@]}" bpf policy get "default/${DEATHSTAR_POD#pod/}"

step "L7: replace rule1 with upstream's HTTP rule (only POST /v1/request-landing)"
grep -v '^#' examples/starwars/sw_l3_l4_l7_policy.yaml
"${CLI[@]}" lab apply -f examples/starwars/sw_l3_l4_l7_policy.yaml
DS=deathstar.default.svc.cluster.local
echo "tiefighter: POST /v1/request-landing -> $("${CLI[@]}" lab exec tiefighter -- curl -s -m 2 -XPOST $DS/v1/request-landing)"
echo "tiefighter: PUT /v1/exhaust-port     -> $("${CLI[@]}" lab exec tiefighter -- curl -s -m 2 -XPUT $DS/v1/exhaust-port)"

step "hubble observe --type l7 (the HTTP proxy's requests and responses)"
"${CLI[@]}" hubble observe --type l7 --last 4

printf '\nThe lab stays up to explore (cilium-ts --lab starwars endpoint list, monitor, lab exec ...).\n'
printf 'Remove it with: node dist/src/cli/main.js lab down --name starwars\n'
