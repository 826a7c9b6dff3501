#!/usr/bin/env bash
# Training speed of two arms, alternated in one run so both see the same
# machine. An arm is a build directory and extra bench flags: OLD / OLD_ARGS
# and NEW / NEW_ARGS (both builds default to build/). Two builds: OLD the build
# of an earlier commit (or of this one configured with -DTAME_TCMALLOC=OFF).
# Two settings of one build: e.g. NEW_ARGS="--precision bf16". For each of
# ROUNDS rounds and each model of MODELS (NAME or NAME:KEY=VALUE,KEY=VALUE),
# bench_train_throughput of OLD then NEW, each model in a process of its own
# (as tame train runs it). Prints the benches' JSON lines, each with its arm.
#
#   OLD=/tmp/build-old MODELS="gated-pixelcnn vae" ROUNDS=3 bench/train_ab.sh
#   NEW_ARGS="--precision bf16" MODELS="gated-pixelcnn:hidden=48,layers=12" bench/train_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${OLD:-build} NEW=${NEW:-build} OLD_ARGS=${OLD_ARGS:-} NEW_ARGS=${NEW_ARGS:-}
if [ "$OLD" = "$NEW" ] && [ "$OLD_ARGS" = "$NEW_ARGS" ]; then
  echo "train_ab.sh: OLD and NEW are the same arm; set OLD=DIR or NEW_ARGS=..." >&2
  exit 2
fi
MODELS=${MODELS:-"pixelcnn gated-pixelcnn pixelrnn pixelcnn++ glow vae iwae"}
ROUNDS=${ROUNDS:-3} STEPS=${STEPS:-20} THREADS=${THREADS:-2}
for r in $(seq "$ROUNDS"); do
  for spec in $MODELS; do
    m=${spec%%:*} set=()
    [ "$spec" != "$m" ] && set=(--set "${spec#*:}")
    for arm in old new; do
      if [ $arm = old ]; then b=$OLD args=$OLD_ARGS; else b=$NEW args=$NEW_ARGS; fi
      # shellcheck disable=SC2086  # the arm's flags split on spaces
      "$b/bench_train_throughput" --model "$m" "${set[@]}" --steps "$STEPS" --threads "$THREADS" $args |
        sed "s|^{|{\"arm\":\"$arm\",\"build\":\"$b\",\"round\":$r,|"
    done
  done
done
