#!/usr/bin/env bash
# Data-parallel training on one machine: `tame train` as 1 process x T threads
# against N processes x T/N threads (--nproc N), alternated 1, N, 1, N so both
# see the same machine state. Each run trains STEPS steps of MODEL on
# Fashion-MNIST at the same global batch; the rate is the metrics line of the
# last LOG steps (the first ones warm up). Prints one JSON line: both medians
# (images/s), their ratio, and the N-process run's collective cost per step
# (seconds and bytes per rank) from its metrics.
#
#   NPROC=2 THREADS=2 BATCH=32 STEPS=120 LOG=40 MODEL=pixelcnn bench/data_parallel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NPROC=${NPROC:-2} THREADS=${THREADS:-2} BATCH=${BATCH:-32} STEPS=${STEPS:-120} LOG=${LOG:-40}
MODEL=${MODEL:-pixelcnn} DATA=${DATA:-fashion-mnist}
TAME=build/tame PY=/usr/bin/python3
[[ -x $TAME ]] || { echo "data_parallel: $TAME is missing: build tame first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

last() {  # the last training line of a run's metrics: images/s, comm s/step, comm bytes/step
  "$PY" -c 'import json,sys
r=[j for j in map(json.loads, open(sys.argv[1])) if j["type"]=="train"]
j=r[-1]; print(j["images_per_s"], j.get("comm_s_per_step", 0), j.get("comm_bytes_per_step", 0))' \
    "$1/metrics.jsonl"
}

run() {  # run dir, extra options
  "$TAME" train --model "$MODEL" --data "$DATA" --out "$1" --batch-size "$BATCH" \
    --max-steps "$STEPS" --log-every "$LOG" --eval-limit 64 --quiet "${@:2}" >/dev/null
}

one=() many=() comm=() bytes=()
for i in 1 2; do
  run "$work/one$i" --threads "$THREADS"
  one+=("$(last "$work/one$i" | cut -d' ' -f1)")
  run "$work/many$i" --nproc "$NPROC" --threads $((THREADS / NPROC > 0 ? THREADS / NPROC : 1))
  read -r rate c b < <(last "$work/many$i")
  many+=("$rate") comm+=("$c") bytes+=("$b")
done
"$PY" - "$MODEL" "$NPROC" "$THREADS" "$BATCH" "$STEPS" "${one[@]}" "${many[@]}" "${comm[@]}" \
  "${bytes[@]}" <<'PYEOF'
import json, statistics, sys
model, nproc, threads, batch, steps = sys.argv[1], *map(int, sys.argv[2:6])
v = [float(x) for x in sys.argv[6:]]
one, many, comm, nbytes = v[0:2], v[2:4], v[4:6], v[6:8]
print(json.dumps({"bench": "data_parallel", "model": model, "batch": batch, "steps": steps,
                  "one_process_threads": threads, "nproc": nproc,
                  "threads_per_rank": max(1, threads // nproc),
                  "one_process_images_per_s": statistics.median(one),
                  "nproc_images_per_s": statistics.median(many),
                  "ratio": statistics.median(many) / statistics.median(one),
                  "comm_s_per_step": statistics.median(comm),
                  "comm_bytes_per_step": statistics.median(nbytes)}))
PYEOF
