#!/usr/bin/env bash
# The flow runs behind docs/RESULTS.md: each flow with uniform and variational
# dequantization, trained on Fashion-MNIST for a fixed wall time, then
# evaluated on the test set with K = 1 (all 10,000 images) and K = 100
# importance samples (the first EVAL100_LIMIT images; 0 = all).
#
#   scripts/flow_runs.sh                          # every run, ~75 min on 2 cores
#   RUNS="glow:variational:1200" scripts/flow_runs.sh
#   RUNS="glow:variational:6600:steps=8,hidden=96:glow-long" THREADS=1 scripts/flow_runs.sh
#
# A run is model:dequantization:seconds[:extra --set flags, comma-separated[:name]];
# THREADS (0 = all) sets the CPU threads of training.
set -euo pipefail
cd "$(dirname "$0")/.."
TAME=${TAME:-${BUILD_DIR:-build}/tame}
OUT=${OUT:-runs/flows}
EVAL100_LIMIT=${EVAL100_LIMIT:-1000}
THREADS=${THREADS:-0}
RUNS=${RUNS:-"glow:variational:1200 glow:uniform:600 realnvp:uniform:600 realnvp:variational:600 nice:uniform:300 nice:variational:300"}
mkdir -p "$OUT"
for spec in $RUNS; do
  IFS=: read -r model deq seconds sets name <<<"$spec"
  run="$OUT/${name:-$model-$deq}"
  flags=(--set dequantization="$deq")
  for kv in ${sets//,/ }; do flags+=(--set "$kv"); done
  echo "== $model, $deq dequantization ${sets}, ${seconds}s -> $run"
  start=$(date +%s)
  "$TAME" train --model "$model" --data fashion-mnist --out "$run" "${flags[@]}" --threads "$THREADS" \
    --time-limit "$seconds" --epochs 100 --batch-size 64 --lr 1e-3 --eval-limit 1000 --quiet
  "$TAME" eval "$run" --json | tee "$run/eval_k1.json"
  "$TAME" eval "$run" --json --iw-samples 100 --limit "$EVAL100_LIMIT" | tee "$run/eval_k100.json"
  "$TAME" eval "$run" --json --limit "$EVAL100_LIMIT" | tee "$run/eval_k1_limit.json"
  "$TAME" sample "$run" -n 64 --seed 1 --temperature 0.7 --out "$run/samples_t07.png"
  "$TAME" sample "$run" -n 64 --seed 1 --out "$run/samples_t1.png"
  echo "   wall time $(( $(date +%s) - start ))s"
done
