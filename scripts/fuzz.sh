#!/usr/bin/env bash
# Builds the libFuzzer target for the codec's file parser and decoder (clang,
# with AddressSanitizer and UndefinedBehaviorSanitizer) and runs it for a
# bounded time over the seed corpus in fuzz/corpus. Usage: scripts/fuzz.sh [SECONDS]
# New inputs the fuzzer finds go to a temporary folder, not into the repo; a
# crash, hang, leak or sanitizer report ends the script non-zero and leaves the
# input as crash-*/timeout-*/leak-* in $FUZZ_OUT (default build/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
OUT=${FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT"
SRCS=(src/tame/codec/model_codec.cpp src/tame/codec/rans.cpp src/tame/codec/bits_back.cpp src/tame/codec/flow_coder.cpp
      src/tame/codec/codes_coder.cpp
      src/tame/models/autoregressive/step_engine.cpp src/tame/dist/integer_cdf.cpp
      src/tame/nn/step_kernels.cpp src/tame/nn/feedforward.cpp src/tame/io/file.cpp src/tame/parallel.cpp)
FLAGS=(-std=c++17 -g -O1 -ffp-contract=off -Wno-psabi -Isrc -Ifuzz)
clang++ "${FLAGS[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION fuzz/fuzz_decoder.cpp "${SRCS[@]}" -lz -o "$OUT/fuzz_decoder"
if [ "${REGENERATE_CORPUS:-0}" = 1 ]; then
  clang++ "${FLAGS[@]}" fuzz/make_corpus.cpp "${SRCS[@]}" -lz -o "$OUT/make_corpus"
  "$OUT/make_corpus" fuzz/corpus
fi
NEW=$(mktemp -d)
trap 'rm -rf "$NEW"' EXIT
# libFuzzer's progress lines go to $OUT/fuzz.log; its tail is shown on failure.
if ! (cd "$OUT" && ./fuzz_decoder -max_total_time="$SECONDS_TO_RUN" -max_len=1024 -timeout=10 -rss_limit_mb=2048 \
   -print_final_stats=1 "$NEW" "$OLDPWD/fuzz/corpus") >"$OUT/fuzz.log" 2>&1; then
  tail -n 60 "$OUT/fuzz.log"
  echo "fuzz: FAILED (inputs that fail are in $OUT)" >&2
  exit 1
fi
grep -E "^stat::(number_of_executed_units|new_units_added)" "$OUT/fuzz.log" || true
echo "fuzz: no crash, hang, leak or sanitizer report in ${SECONDS_TO_RUN} s"
