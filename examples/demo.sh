#!/usr/bin/env bash
# mlstrata end to end on embedded defaults (run by `make demo`), in a fresh ./demo-workspace:
# data stratum step by step (synth → ingest → profile → contract → validate → clean → split),
# then the model stratum with `mlstrata run` (train → package → evaluate → test → register),
# a second `mlstrata run` that skips every unchanged step, and a promotion to `champion`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DEMO="${DEMO_DIR:-$PWD/demo-workspace}"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
mlstrata init "$DEMO" --project credit-demo
cp "$HERE/mlstrata.yaml" "$DEMO/mlstrata.yaml"
cp "$HERE/credit-recipe.yaml" "$DEMO/recipe.yaml"
cd "$DEMO"

step "1. Synthesize 20,000 credit applications (and a new batch of 3,000)"
mlstrata synth credit --rows 20000 --seed 7 --out data/credit.csv
mlstrata synth credit --rows 3000 --seed 8 --out data/new-batch.csv

step "2. Ingest: dataset version + sealed test set (latest 20%) + byte-exact backup, PII hashed/masked"
mlstrata ingest data/credit.csv --name credit --target default --key application_id \
  --time application_date
step "   Re-ingesting the same bytes gives the same version, not a copy"
mlstrata ingest data/credit.csv --name credit --target default --key application_id \
  --time application_date --json | grep '"reused_existing"'

step "3. Profile (terminal summary; HTML + JSON report in reports/)"
mlstrata profile credit

step "4. Infer a data contract (edit contracts/credit.yaml to tighten it)"
mlstrata contract infer credit

step "5. Validate the training data against its contract (exit 1 = some rule failed)"
mlstrata validate credit || echo "→ some postal codes are invalid; the recipe below filters them"

step "6. Clean with a re-playable recipe (statistics fitted on training rows, frozen)"
mlstrata clean credit --recipe recipe.yaml
step "   The cleaned version passes the contract"
mlstrata validate credit --contract contracts/credit.yaml
step "   A new batch is checked before anyone uses it"
if mlstrata validate data/new-batch.csv --contract contracts/credit.yaml; then
  echo "new batch: all rules passed"
else
  echo "→ new batch: failing rules above; the HTML report lists the failing rows"
fi

step "7. Split train/validation reproducibly (stratified on the target)"
mlstrata split credit --strategy stratified --val 0.2 --seed 0

step "8. The model stratum: mlstrata run (train → package → evaluate → test → register)"
mlstrata run

step "9. Nothing changed, so a second run skips every step"
mlstrata run --json | python3 -c 'import json,sys; print({s["step"]: s["status"] for s in json.load(sys.stdin)["steps"]})'

step "10. Promote the registered model to champion (allowed: gates and acceptance test passed)"
mlstrata models promote credit@1 --alias champion
mlstrata models list

step "Where things are"
echo "model card:   $(ls -d "$DEMO"/packages/*/ | head -1)model_card.html"
echo "reports:      $DEMO/reports/"
echo "MLflow UI:    (cd $DEMO && mlflow ui --backend-store-uri sqlite:///.mlstrata/mlflow.db)"
echo "lineage:      mlstrata show credit.model -w $DEMO"
