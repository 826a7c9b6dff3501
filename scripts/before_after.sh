#!/usr/bin/env bash
# Compares two builds of tame in one run on one machine, alternating them, as
# docs/RESULTS.md ("The redesign, before and after") reports:
#   scripts/before_after.sh OLD_BUILD_DIR NEW_BUILD_DIR RUN_DIR [IMAGES]
# RUN_DIR is an autoregressive run both builds can read (a checkpoint the
# older one wrote). Prints the benchmarks' JSON, then compares the two builds'
# compressed files of the first IMAGES (default 200) Fashion-MNIST test images:
# header and payload sizes, and whether the payloads are byte-identical.
set -euo pipefail
OLD=$1 NEW=$2 RUN=$3 N=${4:-200}
for round in 1 2; do
  for B in "$OLD" "$NEW"; do
    echo "== round $round: $B"
    "$B/bench_train_throughput" --steps 10 --threads 2 --model pixelcnn
    "$B/bench_train_throughput" --steps 10 --threads 2 --model gated-pixelcnn
    "$B/bench_codec" "$RUN" --threads 2 --limit 500 --samples 64 --naive 0
  done
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for side in old new; do
  B=$OLD; [ "$side" = new ] && B=$NEW
  "$B/tame" compress "$RUN" --data fashion-mnist --split test --limit "$N" --out "$tmp/$side.tamez" \
    --threads 2 >/dev/null
done
# A file is magic (8 bytes), version, meta length (u32 LE each), the meta and a
# CRC-32, then the payloads.
header_bytes() { echo $((16 + $(od -An -t u4 -j 12 -N 4 "$1") + 4)); }
ho=$(header_bytes "$tmp/old.tamez") hn=$(header_bytes "$tmp/new.tamez")
tail -c +$((ho + 1)) "$tmp/old.tamez" >"$tmp/old.payload"
tail -c +$((hn + 1)) "$tmp/new.tamez" >"$tmp/new.payload"
same=no; cmp -s "$tmp/old.payload" "$tmp/new.payload" && same=yes
echo "{\"images\":$N,\"old_header\":$ho,\"new_header\":$hn,\"old_payload\":$(stat -c %s "$tmp/old.payload"),\"new_payload\":$(stat -c %s "$tmp/new.payload"),\"payload_identical\":\"$same\"}"
