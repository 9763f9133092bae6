#!/usr/bin/env bash
# The main job, end to end: set up; validate, lint, plan and resolve examples/lab.yaml; then
# build it as a lab of network namespaces (`vmknet lab up`), check it (`lab status`), try a
# change that would cut management off (refused and rolled back, REQ-5), and `lab down`.
# Uses a temporary store and a lab name of its own; an EXIT trap removes both, so nothing is
# left behind even when a step fails or the demo is interrupted. The lab part needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

tmp=$(mktemp -d -t vmknet-demo.XXXXXX)
lab="demo-$$"
export VMKNET_STORE="$tmp/inventory.db"
file=examples/lab.yaml

cleanup() {
    if [ "$(id -u)" -eq 0 ]; then
        .venv/bin/vmknet lab down --name "$lab" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap runs on ^C and kill too

step() {
    printf '\n$ vmknet %s\n' "$*"
    .venv/bin/vmknet "$@"
}

step validate "$file"
step lint "$file" --severity warning
printf '\n$ vmknet plan %s | tail -n 3\n' "$file"  # 69 additions: the last few say enough
.venv/bin/vmknet plan "$file" | tail -n 3

if [ "$(id -u)" -ne 0 ]; then
    printf '\ndemo: the lab needs root (network namespaces); skipped\n'
    exit 0
fi
step lab up "$file" --name "$lab"
printf '\n# The management plane: one agent per host, heartbeating over its management adapter:\n'
step host status
step lab status
step lab check
step resolve vmotion esx01 esx03
printf '\n# A jumbo frame with DF set, over the routed vMotion network (own gateway):\n'
step vmkping -H esx01 -I vmk1 -S vmotion -d -s 8972 -c 2 198.18.5.13
step stats -H esx01
printf '\n# Live migration over the vMotion adapters resolve() picks (multi-NIC, encrypted):\n'
step vm create web01 -H esx01 --memory 256MiB --dirty-rate 20MB/s
step vmotion web01 --to esx02
step vm list
printf '\n# Cold migration of a powered-off VM: its files cross over NFC on the provisioning stack:\n'
step vm create db01 -H esx01 --memory 64MiB --dirty-rate 1MB/s --disk 8GiB --disk-data 64MiB
step vm power-off db01
step vm migrate db01 --to esx03
step vm files
printf '\n# A change to every host rolls out through the host agents, one host at a time (MGMT-3):\n'
sed '/dvportgroup: Provisioning/a\        mtu: 8000' "$file" > "$tmp/mtu.yaml"
step apply --yes --max-unavailable 1 "$tmp/mtu.yaml"
printf '\n# A change that cuts esx01 off from the controller: its agent reverts it (MGMT-2, REQ-5):\n'
step esxcli -H esx01 network vswitch standard portgroup set -p "Management Network" -v 99 \
    && { echo "demo: REQ-5 did not refuse the change" >&2; exit 1; }
step events
step host status
step vm destroy web01
step lab status
step lab down
printf '\ndemo: done (lab %s down, store %s removed)\n' "$lab" "$VMKNET_STORE"
