#!/usr/bin/env bash
# Coding speed of two builds of tame, alternated in one run so both see the
# same machine: OLD (a build directory of an earlier commit) and NEW (default
# build/). Prints JSON lines: bench_codec of the Fashion-MNIST run FASHION_RUN
# (old, new, old, new), then the encode and decode seconds of PHOTOS with the
# run PHOTO_RUN (old, new), and whether the two builds' files are identical.
# FASHION_RUN= (empty) skips the Fashion-MNIST part.
#
#   OLD=/tmp/build-old FASHION_RUN=runs/demo PHOTO_RUN=runs/photo-gated bench/codec_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${OLD:?set OLD to the build directory of the earlier commit} NEW=${NEW:-build}
FASHION_RUN=${FASHION_RUN-runs/demo} PHOTO_RUN=${PHOTO_RUN:-} LIMIT=${LIMIT:-2000} THREADS=${THREADS:-2}
PHOTOS=${PHOTOS:-"data/photos/test/Kite.png data/photos/test/Path.png data/photos/test/summer_1am.png"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }

if [[ -n $FASHION_RUN ]]; then
  for b in "$OLD" "$NEW" "$OLD" "$NEW"; do
    echo "{\"build\":\"$b\",\"codec\":$("$b/bench_codec" "$FASHION_RUN" --threads "$THREADS" --limit "$LIMIT" --naive 0 | tail -1)}"
  done
fi
[[ -n $PHOTO_RUN ]] || exit 0
for n in old new; do
  b=$OLD
  [[ $n == new ]] && b=$NEW
  # shellcheck disable=SC2086
  s=$(now); "$b/tame" compress "$PHOTO_RUN" $PHOTOS --out "$work/$n.tamez" --threads "$THREADS" --quiet; e=$(now)
  enc=$(echo "$e - $s" | bc)
  s=$(now); "$b/tame" decompress "$PHOTO_RUN" "$work/$n.tamez" --out "$work/$n" --threads "$THREADS" --quiet; e=$(now)
  echo "{\"build\":\"$b\",\"photos\":\"$PHOTOS\",\"bytes\":$(stat -c %s "$work/$n.tamez"),\"encode_s\":$enc,\"decode_s\":$(echo "$e - $s" | bc)}"
done
same=false
cmp -s "$work/old.tamez" "$work/new.tamez" && same=true
echo "{\"files_identical\":$same}"
