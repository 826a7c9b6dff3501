#!/usr/bin/env bash
# The runs behind docs/RESULTS.md's table of FID and bits/dim: the FID
# classifier of Fashion-MNIST, a short run of the best model of each family
# (a run directory that already has a checkpoint is kept), then for each its
# bits/dim and FID of FID_SAMPLES samples against the 10,000 test images, and
# a grid of 64 samples. The VQ models are scored as the pair with their
# priors (a gated PixelCNN over vqvae's codes, a transformer over vqgan's;
# for vqvae2 a transformer over its top codes, then a gated PixelCNN over its
# bottom codes given the top ones).
#
#   scripts/fid_runs.sh              # ~100 minutes on 2 cores
#   OUT=runs/fid FID_SAMPLES=1000 scripts/fid_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TAME=${TAME:-${BUILD_DIR:-build}/tame}
OUT=${OUT:-runs/fid}
N=${FID_SAMPLES:-1000}
CLS="$OUT/fashion-mnist.fidc"
mkdir -p "$OUT"
[ -f "$CLS" ] || "$TAME" classifier --data fashion-mnist --out "$CLS"

train() {  # name, then tame train's flags
  local name=$1
  shift
  [ -f "$OUT/$name/checkpoint.tame" ] && return 0
  echo "== training $name"
  "$TAME" train --out "$OUT/$name" --quiet "$@"
}
F=(--data fashion-mnist --epochs 100 --batch-size 64 --eval-limit 1000)
train vqvae --model vqvae "${F[@]}" --time-limit 600 --lr 1e-3
train vqvae-prior --model gated-pixelcnn --data "codes:$OUT/vqvae" --epochs 100 --batch-size 64 \
  --eval-limit 1000 --time-limit 480 --lr 1e-3
train vqgan --model vqgan "${F[@]}" --time-limit 600 --lr 5e-4 --set perceptual="$CLS" \
  --set disc_start=500
train vqgan-prior --model transformer --data "codes:$OUT/vqgan" --epochs 100 --batch-size 64 \
  --eval-limit 1000 --time-limit 480 --lr 1e-3 --set width=128 --set layers=4 --set mlp=256
train vqvae2 --model vqvae2 "${F[@]}" --time-limit 600 --lr 1e-3
train vqvae2-top --model transformer --data "codes:$OUT/vqvae2:top" --epochs 100 --batch-size 64 \
  --eval-limit 1000 --time-limit 480 --lr 1e-3 --set width=128 --set layers=4 --set mlp=256
train vqvae2-bottom --model gated-pixelcnn --data "codes:$OUT/vqvae2:bottom" --epochs 100 \
  --batch-size 64 --eval-limit 1000 --time-limit 480 --lr 1e-3
train dcgan --model dcgan "${F[@]}" --time-limit 480 --lr 2e-4 --schedule constant --warmup 0
train gated-pixelcnn --model gated-pixelcnn --data fashion-mnist --time-limit 480 --epochs 3 \
  --batch-size 32 --lr 3e-3 --eval-limit 1000
train glow --model glow "${F[@]}" --set dequantization=variational --time-limit 480 --lr 1e-3
train vae --model vae "${F[@]}" --time-limit 360 --lr 2e-3
train vlae --model vlae "${F[@]}" --time-limit 360 --lr 2e-3

score() {  # name, then the run (and --prior PRIOR)
  local name=$1
  shift
  echo "== scoring $name"
  "$TAME" eval "$@" --fid "$N" --classifier "$CLS" --json | tee "$OUT/$name.eval.json"
  "$TAME" sample "$@" -n 64 --seed 1 --out "$OUT/$name.png"
}
for name in gated-pixelcnn glow vae vlae dcgan; do score "$name" "$OUT/$name"; done
score vqvae+prior "$OUT/vqvae" --prior "$OUT/vqvae-prior"
score vqgan+prior "$OUT/vqgan" --prior "$OUT/vqgan-prior"
score vqvae2+priors "$OUT/vqvae2" --prior "$OUT/vqvae2-top" --prior "$OUT/vqvae2-bottom"
