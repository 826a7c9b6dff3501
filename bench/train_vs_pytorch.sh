#!/usr/bin/env bash
# tame's training throughput against Python PyTorch at the same architecture,
# batch and threads: build/bench_train_throughput and bench/pytorch_train.py,
# alternated tame, python, tame, python so both see the same machine state.
# Prints one JSON line per model: both medians (images/s) and tame/python.
# Both do WARMUP steps, then STEPS timed ones, clipping gradients at 1.0 as
# tame train does.
#
# tame's executables allocate through tcmalloc; PY_PRELOAD=PATH runs Python
# with LD_PRELOAD=PATH (for example the same tcmalloc) to compare at equal
# allocators.
#
#   BATCH=32 THREADS=2 STEPS=20 bench/train_vs_pytorch.sh [MODEL...]
#   (models default to pixelcnn gated-pixelcnn)
#   PY_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 bench/train_vs_pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${BATCH:-32} THREADS=${THREADS:-2} STEPS=${STEPS:-20} WARMUP=${WARMUP:-5}
TAME=build/bench_train_throughput PY=/usr/bin/python3 PY_PRELOAD=${PY_PRELOAD:-}
[[ -x $TAME ]] || { echo "train_vs_pytorch: $TAME is missing: build tame first" >&2; exit 1; }
"$PY" -c "import torch" 2>/dev/null ||
  { echo "train_vs_pytorch: $PY with torch is missing: apt-get install python3-torch" >&2; exit 1; }
(($# > 0)) || set -- pixelcnn gated-pixelcnn

rate() {  # the images_per_s of the last JSON line on stdin
  "$PY" -c 'import json,sys; r=[json.loads(l) for l in sys.stdin if l.startswith("{")]
print(r[-1]["images_per_s"]) if r else sys.exit("train_vs_pytorch: no JSON result from '"$1"'")'
}

for m in "$@"; do
  t=() p=()
  for _ in 1 2; do
    t+=("$("$TAME" --model "$m" --batch "$BATCH" --threads "$THREADS" --steps "$STEPS" \
      --warmup "$WARMUP" --clip 1 | rate "$TAME")")
    p+=("$(LD_PRELOAD=$PY_PRELOAD "$PY" bench/pytorch_train.py --model "$m" --batch "$BATCH" --threads "$THREADS" \
      --steps "$STEPS" --warmup "$WARMUP" --clip 1 | rate pytorch_train.py)")
  done
  "$PY" - "$m" "$BATCH" "$THREADS" "$STEPS" "$PY_PRELOAD" "${t[@]}" "${p[@]}" <<'EOF'
import json, statistics, sys
m, b, th, s = sys.argv[1], *map(int, sys.argv[2:5])
pre = sys.argv[5]
t, p = [float(v) for v in sys.argv[6:8]], [float(v) for v in sys.argv[8:10]]
tm, pm = statistics.median(t), statistics.median(p)
print(json.dumps({"bench": "train_vs_pytorch", "model": m, "batch": b, "threads": th, "steps": s,
                  "tame_images_per_s": tm, "pytorch_images_per_s": pm, "pytorch_preload": pre,
                  "ratio": tm / pm}))
EOF
done
