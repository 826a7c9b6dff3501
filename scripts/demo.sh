#!/usr/bin/env bash
# The main job: set-up, build, then train the default model (gated-pixelcnn) on
# Fashion-MNIST for a bounded time, evaluate it on the full 10,000-image test
# set, write a grid of samples, and use the model as a lossless codec on the
# test set, beside PNG, WebP and JPEG-XL on the same images.
#
#   scripts/demo.sh                  # 13 minutes of training on 2 cores, ~18 in all
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
echo "== compressing the 10,000 test images with the model, decoding them again, and"
echo "   coding the same images as PNG, WebP and JPEG-XL files (one file per image)"
"$TAME" compress "$RUN" --data fashion-mnist --split test --out "$RUN/test.tamez" --verify --compare
echo
echo "Fashion-MNIST test: $BPD bits/dim (exact NLL, 10,000 images); the compressed file is in the table above"
echo "run directory: $RUN (config.json, metrics.jsonl, checkpoint.tame, test.tamez)"
echo "samples:       $RUN/samples.png"
