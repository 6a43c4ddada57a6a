#!/usr/bin/env bash
# The data stratum end to end on embedded defaults (run by `make demo`):
# synth → ingest → profile → contract → validate → clean → split, in a fresh ./demo-workspace.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DEMO="${DEMO_DIR:-$PWD/demo-workspace}"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
mlstrata init "$DEMO" --project credit-demo
cd "$DEMO"

step "1. Synthesize 20,000 credit applications (and a new batch of 3,000)"
mlstrata synth credit --rows 20000 --seed 7 --out data/credit.csv
mlstrata synth credit --rows 3000 --seed 8 --out data/new-batch.csv

step "2. Ingest: dataset version + sealed test set (latest 20%) + byte-exact backup, PII masked"
mlstrata ingest data/credit.csv --name credit --target default --key application_id \
  --time application_date --pii email=hash --pii phone=mask
step "   Re-ingesting the same bytes gives the same version, not a copy"
mlstrata ingest data/credit.csv --name credit --target default --key application_id \
  --time application_date --pii email=hash --pii phone=mask --json | grep '"reused_existing"'

step "3. Profile (terminal summary; HTML + JSON report in reports/)"
mlstrata profile credit

step "4. Infer a data contract (edit contracts/credit.yaml to tighten it)"
mlstrata contract infer credit

step "5. Validate the training data against its contract (exit 1 = some rule failed)"
mlstrata validate credit || echo "→ some postal codes are invalid; the recipe below filters them"

step "6. Clean with a re-playable recipe (statistics fitted on training rows, frozen)"
mlstrata clean credit --recipe "$HERE/credit-recipe.yaml"
step "   The cleaned version now passes the contract"
mlstrata validate credit --contract contracts/credit.yaml

step "   A new batch is checked before anyone uses it"
if mlstrata validate data/new-batch.csv --contract contracts/credit.yaml; then
  echo "new batch: all rules passed"
else
  echo "→ new batch: failing rules above; the HTML report lists the failing rows"
fi

step "7. Split train/validation reproducibly (stratified on the target)"
mlstrata split credit --strategy stratified --val 0.1 --seed 0

step "The workspace: every artifact with its id, lineage in 'mlstrata show REF'"
mlstrata ls
mlstrata show credit

step "Reports"
ls -1 "$DEMO"/reports/*.html
echo
echo "Open any of them in a browser; they are self-contained and work offline."
