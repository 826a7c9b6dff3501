#!/usr/bin/env bash
# The latent-variable runs behind docs/RESULTS.md: each model trained on
# Fashion-MNIST for a fixed wall time, then evaluated with K = 1 (all 10,000
# test images), K = 100 (the first 1,000) and K = 5,000 (the first
# EVAL5000_LIMIT) importance samples, with KL and active units.
#
#   scripts/latent_runs.sh                     # the four runs of RESULTS, ~60 min on 2 cores
#   RUNS="vae:360:" scripts/latent_runs.sh      # name:seconds:extra --set flags (comma-separated)[:model]
#
# The model is the name without a "-full" suffix unless given; seconds = 0
# trains for EPOCHS epochs instead of a wall time. DATA, BATCH, LR, EPOCHS,
# THREADS (of training), EVAL100_LIMIT and EVAL5000_LIMIT (0 = all, none = skip) can be set;
# TRAIN_FLAGS are passed to `tame train` as they are. The binarized-MNIST runs
# of RESULTS:
#   DATA=mnist-10k-bin OUT=runs/binarized BATCH=20 LR=1e-3 EPOCHS=200 EVAL100_LIMIT=0 EVAL5000_LIMIT=0 \
#   TRAIN_FLAGS=--dynamic-binarization RUNS="vae-mlp:0:arch=mlp,hidden=200,latent=50:vae \
#   iwae-k50:0:arch=mlp,hidden=200,latent=50,k=50:iwae" scripts/latent_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TAME=${TAME:-${BUILD_DIR:-build}/tame}
OUT=${OUT:-runs/latent}
DATA=${DATA:-fashion-mnist}
EVAL5000_LIMIT=${EVAL5000_LIMIT:-50}
EVAL100_LIMIT=${EVAL100_LIMIT:-1000}
BATCH=${BATCH:-64}
LR=${LR:-2e-3}
EPOCHS=${EPOCHS:-100}
THREADS=${THREADS:-0}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
RUNS=${RUNS:-"vae:360: iwae:360: vlae:360: vlae-full:360:input_kernel=7,pixel_layers=6"}
mkdir -p "$OUT"
for spec in $RUNS; do
  IFS=: read -r name seconds sets model <<<"$spec"
  model=${model:-${name%-full}}
  run="$OUT/$name"
  flags=()
  for kv in ${sets//,/ }; do flags+=(--set "$kv"); done
  echo "== $name ($model ${sets}), ${seconds}s -> $run"
  start=$(date +%s)
  "$TAME" train --model "$model" --data "$DATA" --out "$run" "${flags[@]}" --threads "$THREADS" \
    --time-limit "$seconds" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --eval-limit 1000 --quiet \
    $TRAIN_FLAGS
  "$TAME" eval "$run" --json | tee "$run/eval_k1.json"
  "$TAME" eval "$run" --json --iw-samples 100 --limit "$EVAL100_LIMIT" | tee "$run/eval_k100.json"
  if [ "$EVAL5000_LIMIT" != none ]; then
    "$TAME" eval "$run" --json --iw-samples 5000 --limit "$EVAL5000_LIMIT" --batch-size 10 | tee "$run/eval_k5000.json"
    "$TAME" eval "$run" --json --limit "$EVAL5000_LIMIT" | tee "$run/eval_k1_limit.json"
  fi
  "$TAME" sample "$run" -n 64 --seed 1 --out "$run/samples.png"
  "$TAME" reconstruct "$run" -n 32 --out "$run/reconstructions.png"
  echo "   wall time $(( $(date +%s) - start ))s"
done
