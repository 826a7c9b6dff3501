#!/usr/bin/env bash
# Training speed of two builds of tame, alternated in one run so both see the
# same machine: OLD (a build directory of an earlier commit, or of this one
# configured with -DTAME_TCMALLOC=OFF) and NEW (default build/). For each of
# ROUNDS rounds and each model of MODELS, bench_train_throughput of OLD then
# NEW, each model in a process of its own (as tame train runs it). Prints the
# benches' JSON lines, each with the build that gave it.
#
#   OLD=/tmp/build-old MODELS="gated-pixelcnn vae" ROUNDS=3 bench/train_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${OLD:?set OLD to the build directory of the earlier commit} NEW=${NEW:-build}
MODELS=${MODELS:-"pixelcnn gated-pixelcnn pixelrnn pixelcnn++ glow vae iwae"}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-20} THREADS=${THREADS:-2}
for r in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    for b in "$OLD" "$NEW"; do
      "$b/bench_train_throughput" --model "$m" --steps "$STEPS" --threads "$THREADS" |
        sed "s|^{|{\"build\":\"$b\",\"round\":$r,|"
    done
  done
done
