#!/usr/bin/env bash
# The main job on the bundled sample ESB: a scratch copy, the plan, the clone, the check.
set -euo pipefail
cd "$(dirname "$0")/.."
ESBGEN=.venv/bin/esbgen
DEMO=demo-esb

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
cp -r fixtures/esb "$DEMO"
step "A scratch copy of the sample ESB in $DEMO/; its systems:"
$ESBGEN list --esb-root "$DEMO"

step "The plan for: esbgen clone sops --as bk_sops_ce --dry-run"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$DEMO" --dry-run

step "The clone itself"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$DEMO"

step "What changed in one channel (source on the left, clone on the right)"
diff -u "$DEMO/components/confapis/sops/sops.yaml" "$DEMO/components/confapis/bk_sops_ce/bk_sops_ce.yaml" \
    | sed -n '1,20p' || true

step "The ESB's rules, checked on the whole tree"
$ESBGEN check --esb-root "$DEMO"

step "Running the same clone again changes nothing"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$DEMO"

step "Done"
echo "Look around in $DEMO/; '$ESBGEN undo --esb-root $DEMO' reverts the clone."
