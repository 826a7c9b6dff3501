#!/usr/bin/env bash
# The main job: set-up, build, then train the default model (gated-pixelcnn) on
# Fashion-MNIST for a bounded time, evaluate it on the full 10,000-image test
# set, and write a grid of samples.
#
#   scripts/demo.sh                  # 13 minutes of training on 2 cores
#   TIME_LIMIT=120 scripts/demo.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
TIME_LIMIT=${TIME_LIMIT:-780}
RUN=${RUN:-runs/demo-$(date +%Y%m%d-%H%M%S)}
MODEL=${MODEL:-gated-pixelcnn}

scripts/setup.sh
scripts/build.sh >/dev/null
TAME=${BUILD_DIR:-build}/tame

echo "== training $MODEL on fashion-mnist for at most ${TIME_LIMIT}s -> $RUN"
"$TAME" train --model "$MODEL" --data fashion-mnist --out "$RUN" \
  --time-limit "$TIME_LIMIT" --epochs 3 --batch-size 32 --lr 3e-3 --eval-limit 1000
echo "== evaluating on the full test set"
"$TAME" eval "$RUN" --json | tee "$RUN/eval.json"
echo "== sampling 64 images"
"$TAME" sample "$RUN" -n 64 --out "$RUN/samples.png" --seed 1
BPD=$(sed -n 's/.*"bpd":\([0-9.]*\).*/\1/p' "$RUN/eval.json" | xargs printf "%.3f")
echo
echo "Fashion-MNIST test: $BPD bits/dim (exact NLL, 10,000 images)"
echo "  for scale: JPEG-XL lossless 3.94, WebP 4.55, PNG 5.05 bits/dim on these images"
echo "run directory: $RUN (config.json, metrics.jsonl, checkpoint.tame)"
echo "samples:       $RUN/samples.png"
