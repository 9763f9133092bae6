#!/usr/bin/env bash
# The main job, end to end: set up, then validate, lint, plan, apply, show and resolve
# examples/datacenter.yaml against a temporary store (your own store is never touched).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

tmp=$(mktemp -d -t vmknet-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export VMKNET_STORE="$tmp/inventory.db"
file=examples/datacenter.yaml

step() {
    printf '\n$ vmknet %s\n' "$*"
    .venv/bin/vmknet "$@"
}

step validate "$file"
step lint "$file"
step plan "$file"
step apply "$file" --yes
step show
step plan "$file"
step resolve vmotion esx01 esx02
step resolve ft esx01 esx03
printf '\ndemo: done (store %s removed)\n' "$VMKNET_STORE"
