#!/usr/bin/env bash
# mlstrata end to end on embedded defaults (run by `make demo`), in a fresh ./demo-workspace:
# data stratum step by step (synth → ingest → profile → contract → validate → clean → split),
# then the model stratum with `mlstrata run` (train → package → evaluate → test → register),
# a second `mlstrata run` that skips every unchanged step, and a promotion to `champion`;
# then the code stratum: the champion served over REST and gRPC, a model wheel, a streamed batch
# forecast, predictions precomputed into SQLite and looked up over HTTP, and monitoring: a
# stream that drifts half-way with delayed feedback, judged by `mlstrata monitor`, and /metrics;
# then the deployable artifacts: a Docker build context, Kubernetes/KServe manifests, a Lambda zip;
# then an online model served live, learning from a stream with a poisoned burst that its guard
# rolls back and quarantines, frozen by `mlstrata online snapshot` while it serves.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DEMO="${DEMO_DIR:-$PWD/demo-workspace}"
PORT="${DEMO_PORT:-8080}"
GRPC_PORT="${DEMO_GRPC_PORT:-8081}"
URL="http://127.0.0.1:$PORT"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

SERVER=""
stop_server() {  # SIGTERM: the server finishes requests in flight, then exits
  if [ -n "$SERVER" ]; then kill -TERM "$SERVER" && wait "$SERVER" || true; SERVER=""; fi
}
trap stop_server EXIT
wait_ready() {
  for _ in $(seq 200); do
    curl -sf "$URL/v2/health/ready" >/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || { echo "the server exited; see serve.log"; return 1; }
    sleep 0.1
  done
  echo "the server did not become ready; see serve.log"; return 1
}

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
  echo "new batch: no error rule failed (warnings, if any, are listed above: scored, not refused)"
else
  echo "→ new batch: failing rules above; the HTML report lists the failing rows"
fi

step "7. Split train/validation reproducibly (stratified on the target)"
mlstrata split credit --strategy stratified --val 0.2 --seed 0

step "8. The model stratum: mlstrata run (train → package → evaluate → test → register)"
mlstrata run

step "9. Nothing changed, so a second run skips every step"
mlstrata run

step "10. Promote the registered model to champion (allowed: gates and acceptance test passed)"
mlstrata models promote credit@1 --alias champion
mlstrata models list

step "11. Model-as-service: serve credit@champion over REST (OIP v2, MLflow, /v1/predict) and gRPC"
mlstrata serve credit@champion --port "$PORT" --grpc-port "$GRPC_PORT" > serve.log 2>&1 &
SERVER=$!
wait_ready
PACKAGE="$(ls -d "$DEMO"/packages/*/ | head -1)"
python3 "$HERE/make_requests.py" "$PACKAGE" data/new-batch.csv 3 requests.json
python3 -c 'import json; print(json.dumps(json.load(open("requests.json"))[0]))' > one.json
echo "POST /v1/predict (one record):"
curl -s -X POST "$URL/v1/predict" -H 'Content-Type: application/json' -d @one.json; echo
echo "POST /invocations (MLflow dataframe_records):"
python3 -c 'import json; print(json.dumps({"dataframe_records": json.load(open("requests.json"))}))' \
  | curl -s -X POST "$URL/invocations" -H 'Content-Type: application/json' -d @-; echo
echo "Open Inference Protocol v2 with NVIDIA's Triton clients, REST then gRPC:"
python3 "$HERE/triton_client.py" http "127.0.0.1:$PORT" credit.model requests.json
python3 "$HERE/triton_client.py" grpc "127.0.0.1:$GRPC_PORT" credit.model requests.json
step "   A bad request is refused with the field named (HTTP 422), never a 500"
python3 -c 'import json; r = json.load(open("one.json")); r["term_months"] = 18; print(json.dumps(r))' \
  | curl -s -w '  → HTTP %{http_code}\n' -X POST "$URL/v1/predict" \
      -H 'Content-Type: application/json' -d @-
step "   A value past what training saw is scored, with a warning (mlstrata serve --strict refuses it)"
python3 -c 'import json, sys
field = next((f for f in json.load(open(sys.argv[1] + "signature.json"))["inputs"]
              if f["name"] == "num_credit_lines"), {})
record = json.load(open("one.json")); record["num_credit_lines"] = (field.get("max") or 98) + 1
print(json.dumps(record))' "$PACKAGE" \
  | curl -s -X POST "$URL/v1/predict" -H 'Content-Type: application/json' -d @-; echo
echo "OpenAPI docs: $URL/docs"
step "   Stop the server cleanly (SIGTERM: requests in flight finish)"
stop_server
tail -2 serve.log

step "12. Model-as-dependency: an installable wheel whose only dependencies are numpy + onnxruntime"
mlstrata package credit@champion --wheel --dist dist

step "13. Batch forecast: 60,000 new applications (3x the training data), streamed through the runtime"
mlstrata synth credit --rows 60000 --seed 9 --out data/applications.parquet
mlstrata predict credit@champion --input data/applications.parquet \
  --output predictions/applications.parquet --key application_id

step "14. Precompute: the same batch into SQLite (staging table swapped in atomically)"
mlstrata precompute credit@champion --input data/applications.parquet --key application_id \
  --db sqlite:///predictions.db
mlstrata serve credit@champion --port "$PORT" --precomputed sqlite:///predictions.db > serve.log 2>&1 &
SERVER=$!
wait_ready
for key in $(python3 -c 'import pyarrow.parquet as pq; print(" ".join(pq.read_table("predictions/applications.parquet", columns=["application_id"]).column(0).to_pylist()[:3]))'); do
  curl -s "$URL/v1/precomputed/$key"; echo
done
curl -s -w '  → HTTP %{http_code}\n' "$URL/v1/precomputed/NO-SUCH-KEY"
stop_server

step "15. Monitoring: a stream that drifts half-way, delayed feedback, then mlstrata monitor"
mlstrata serve credit@champion --port "$PORT" > serve.log 2>&1 &
SERVER=$!
wait_ready
SINCE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"  # the batch runs above were logged too; watch the stream
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" \
  python3 "$HERE/drift_stream.py" "$URL" "$PACKAGE" data/new-batch.csv 2000
step "   What Prometheus scrapes: GET /metrics (a few of its series)"
curl -s "$URL/metrics" | awk '/^mlstrata_(requests_total|predicted_class_total|warnings_total|prediction_log_(written|dropped)_total|model_info)/ && shown++ < 12'
stop_server  # SIGTERM writes the prediction log's queue
if mlstrata monitor credit@champion --window 1000rows --since "$SINCE"; then
  echo "→ healthy (exit 0)"
else
  echo "→ exit $?: drift and decay found (the table says which windows and why; the HTML report is in reports/)"
fi

step "16. Deploy the champion: a Docker build context, Kubernetes/KServe manifests, an AWS Lambda bundle"
mlstrata deploy docker credit@champion --out deploy/docker --force
mlstrata deploy k8s credit@champion --image mlstrata/credit-model:1 --out deploy/k8s --kserve --force
mlstrata deploy serverless credit@champion --target aws-lambda --out deploy/lambda --force
du -sh deploy/docker deploy/k8s deploy/lambda/function.zip

step "O. Online learning: a model that learns from a stream, served live, guarded against poison"
# Self-contained: the guard is turned on. `online create` leaves the identifier, the masked e-mail
# and phone and the postal code (thousands of values, one weight each) out of the features.
printf 'online: {guard: {enabled: true}}\n' >> mlstrata.yaml
mlstrata synth credit --rows 5000 --seed 11 --out data/events.csv
mlstrata online create online-credit --dataset credit --target default --model logistic_regression
ONLINE_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')"  # a free port
ONLINE_URL="http://127.0.0.1:$ONLINE_PORT"
mlstrata serve --online online-credit --port "$ONLINE_PORT" > online.log 2>&1 &
SERVER=$!
for _ in $(seq 600); do  # up to 60 s: a loaded machine imports slowly
  curl -sf "$ONLINE_URL/v2/health/ready" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "the server exited; see online.log"; exit 1; }
  sleep 0.1
done
echo "predict, then learn the labels by request id, 50 events a request; events 2,001-3,000 arrive"
echo "with flipped labels (a poisoned burst). Accuracy per block of 500, against the true labels:"
python3 "$HERE/online_stream.py" "$ONLINE_URL" data/events.csv --contract contracts/credit.yaml \
  --target default --poison 2001:3000 --every 500
step "   The guard rolled the model back and quarantined the burst (a person releases or drops it)"
mlstrata online show online-credit
step "   Freeze the live model as a versioned model with a River package (the server keeps serving)"
mlstrata online snapshot online-credit
step "   Stop the server (SIGTERM: a last checkpoint)"
stop_server
tail -1 online.log

step "R. Retrain: a new batch → a challenger → champion vs challenger on the same sealed rows"
# Self-contained: the policy (train on the newest batch only, 500 paired resamples) is appended
# to this demo's mlstrata.yaml; exit 1 means the champion was kept, with the reasons shown.
printf 'retrain: {history_batches: 1, bootstrap: 500}\n' >> mlstrata.yaml
if mlstrata retrain credit --data data/new-batch.csv; then
  echo "→ promoted: servers started with credit@champion now answer with the challenger"
else
  echo "→ exit $?: the champion stays (the reasons are above; reports/credit-retrain.html)"
fi
mlstrata models list
echo "scheduled (crontab line):"
mlstrata retrain credit --data "$DEMO/data/incoming.csv" --print-cron

step "Where things are"
echo "model card:   $(ls -d "$DEMO"/packages/*/ | head -1)model_card.html"
echo "reports:      $DEMO/reports/"
echo "MLflow UI:    (cd $DEMO && mlflow ui --backend-store-uri sqlite:///.mlstrata/mlflow.db)"
echo "lineage:      mlstrata show credit.model -w $DEMO"
echo "wheel:        $(ls "$DEMO"/dist/*.whl)"
echo "predictions:  $DEMO/predictions/applications.parquet (rejects beside it, if any)"
echo "serve:        mlstrata serve credit@champion --grpc-port 8081   (docs at /docs)"
echo "deploy:       $DEMO/deploy/ (docker build context, k8s manifests, Lambda zip)"
