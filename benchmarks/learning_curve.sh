#!/usr/bin/env bash
# One training run with its learning curve against CPU time: every evaluation row of spaCy's
# training table is written to OUT.curve.tsv with the wall seconds and the CPU seconds (user +
# system, all threads) the training process had used by then. CPU seconds make runs that shared
# the machine comparable ("equal CPU time"); wall seconds do not.
# usage: benchmarks/learning_curve.sh OUT CONFIG [spacy train overrides...]
# env: THREADS (torch/OpenMP threads, default 1), TRAIN, DEV (DocBins; default corpus/ener/{train,dev}.spacy)
set -euo pipefail
OUT=${1:?usage: learning_curve.sh OUT CONFIG [overrides...]}; CONFIG=${2:?config}; shift 2
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
TRAIN=${TRAIN:-corpus/ener/train.spacy}; DEV=${DEV:-corpus/ener/dev.spacy}
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.pid" "$OUT.times"
# The subshell records the training's own CPU time when it ends (`times`: its children), so the
# last rows, logged just before the process exits and often after the last poll, get a CPU time too.
( python -m spacy train "$CONFIG" --paths.train "$TRAIN" --paths.dev "$DEV" -o "$OUT" "$@" > "$OUT.log" 2>&1 &
  echo $! > "$OUT.pid"; rc=0; wait $! || rc=$?; times > "$OUT.times"; exit $rc ) &
sub=$!
while [ ! -s "$OUT.pid" ]; do sleep 0.1; done
pid=$(cat "$OUT.pid")
start=$(date +%s)
tick=$(getconf CLK_TCK)
printf "wall_s\tcpu_s\tepoch\tstep\tloss_trf\tloss_ner\tents_f\tents_p\tents_r\n" > "$OUT.curve.tsv"
seen=0
to_s() { awk '{n = 0; for (i = 1; i <= NF; i++) {split($i, p, /[ms]/); n += 60 * p[1] + p[2]}; print n}'; }
while :; do
  alive=0; kill -0 "$pid" 2>/dev/null && alive=1
  rows=$(grep -E "^ *[0-9]+ +[0-9]+ " "$OUT.log" || true)
  n=$(printf "%s\n" "$rows" | grep -c . || true)
  if [ "$n" -gt "$seen" ]; then
    if [ "$alive" = 1 ]; then
      cpu=$(awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$pid/stat" 2>/dev/null || echo NA)
    else
      while kill -0 "$sub" 2>/dev/null && [ ! -s "$OUT.times" ]; do sleep 0.1; done
      cpu=$(tail -n 1 "$OUT.times" | to_s 2>/dev/null || echo NA)  # at the exit: includes saving the last model
    fi
    printf "%s\n" "$rows" | tail -n +"$((seen + 1))" | while read -r e s lt ln f p r _; do
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$(( $(date +%s) - start ))" "$cpu" "$e" "$s" "$lt" "$ln" "$f" "$p" "$r"
    done >> "$OUT.curve.tsv"
    seen=$n
  fi
  [ "$alive" = 1 ] || break
  sleep 5
done
wait "$sub"
