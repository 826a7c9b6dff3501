#!/usr/bin/env bash
# Set-up, build, the whole test suite under ctest, then the codec fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j"$(nproc)")
# The codec's file parser and decoder under libFuzzer with ASan and UBSan, for a bounded time.
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
