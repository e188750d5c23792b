#!/usr/bin/env bash
# The main job on two bundled sample ESBs, one of each generation: scratch copies, the plan, the clone,
# where its calls go, the check.
set -euo pipefail
cd "$(dirname "$0")/.."
ESBGEN=.venv/bin/esbgen
DEMO=demo-esb
LEGACY=$DEMO/legacy
LATER=$DEMO/later

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
cp -r fixtures/esb-legacy "$LEGACY"
cp -r fixtures/esb-later "$LATER"

step "A legacy ESB (Python 2.7, configs/default.py), copied to $LEGACY/; its systems:"
$ESBGEN list --esb-root "$LEGACY"

step "Its sops reaches the app through the platform: PAAS_HOST + /o/bk_sops/..."
$ESBGEN verify sops --esb-root "$LEGACY"

step "The plan for: esbgen clone sops --as bk_sops_ce --dry-run"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$LEGACY" --dry-run

step "The clone itself"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$LEGACY"

step "What changed in the channels (source on the left, clone on the right)"
diff -u "$LEGACY/components/confapis/sops/sops.yaml" "$LEGACY/components/confapis/bk_sops_ce/bk_sops_ce.yaml" \
    | sed -n '1,20p' || true

step "Where the clone's calls go: the new app, bk-sops-ce, on the same platform"
$ESBGEN verify bk_sops_ce --esb-root "$LEGACY"

step "The ESB's rules, checked on the whole tree"
$ESBGEN check --esb-root "$LEGACY"

step "Running the same clone again changes nothing"
$ESBGEN clone sops --as bk_sops_ce --esb-root "$LEGACY"

step "A later ESB (Python 3, conf/default.py), copied to $LATER/; its systems:"
$ESBGEN list --esb-root "$LATER"

step "A clone of a system whose channels are declared in Python (esb_conf.py, conf.py)"
$ESBGEN clone umg --as umg_ce --esb-root "$LATER"

step "Its host settings are still to be defined, and verify says so (exit 1)"
$ESBGEN verify umg_ce --esb-root "$LATER" || true

step "The legacy tree's components do not go into the later ESB: sync-edition refuses (exit 1)"
$ESBGEN sync-edition --from "$LEGACY" --esb-root "$LATER" --dry-run || true

step "Done"
echo "Look around in $DEMO/; '$ESBGEN undo --esb-root $LEGACY' reverts the clone there."
