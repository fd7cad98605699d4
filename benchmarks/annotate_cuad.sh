#!/usr/bin/env bash
# Annotate CUAD (510 contracts, 26.8 M characters) with a trained pipeline: one process,
# the Ray engine, and a run killed with SIGKILL mid-way then resumed. Prints the record
# counts of input, output and errors, and checks that the three outputs are identical.
# usage: benchmarks/annotate_cuad.sh MODEL [CONTRACTS_JSONL] [OUT_DIR]   (MODEL: a directory or an
#        installed package name such as en_legal_ner)
# env: RAY=0 skips the Ray run; ANNOTATE_ARGS are added to every annotate call (e.g. --min-confidence 0.8,
#      whose review file is then reconciled too: entities found = kept + sent to review)
set -euo pipefail
RAY=${RAY:-1}; read -r -a EXTRA <<< "${ANNOTATE_ARGS:-}"
MODEL=${1:?usage: annotate_cuad.sh MODEL_DIR [CONTRACTS_JSONL] [OUT_DIR]}
INPUT=${2:-../shared/data/cuad/contracts.jsonl}
OUT=${3:-benchmarks/out/annotate}
mkdir -p "$OUT"
run() { /usr/bin/time -v python -m spacy_domain_ner annotate "$MODEL" "$INPUT" "$@" ${EXTRA[@]+"${EXTRA[@]}"} 2> >(grep -E "Maximum resident|Elapsed \(wall" >&2); }

echo "== one process"; run "$OUT/local.jsonl" --batch-size 16 --no-progress --overwrite
VARIANTS="kill"
if [ "$RAY" != 0 ]; then
  echo "== Ray engine (local instance)"; run "$OUT/ray.jsonl" --engine ray --batch-size 16 --no-progress --overwrite
  VARIANTS="ray kill"
fi

echo "== killed with SIGKILL once 200 records are committed, then resumed"
rm -f "$OUT"/kill.*
python -m spacy_domain_ner annotate "$MODEL" "$INPUT" "$OUT/kill.jsonl" --batch-size 8 --no-progress ${EXTRA[@]+"${EXTRA[@]}"} > /dev/null 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  N=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['records'])" "$OUT/kill.jsonl.checkpoint.json" 2>/dev/null || echo 0)
  if [ "$N" -ge 200 ]; then kill -9 $PID; break; fi
  sleep 0.2
done
wait $PID || echo "first run ended with status $? (137 = SIGKILL)"
run "$OUT/kill.jsonl" --batch-size 8 --no-progress --resume

for variant in $VARIANTS; do
  cmp "$OUT/local.jsonl" "$OUT/$variant.jsonl" && cmp "$OUT/local.errors.jsonl" "$OUT/$variant.errors.jsonl" \
    && { [ ! -e "$OUT/local.review.jsonl" ] || cmp "$OUT/local.review.jsonl" "$OUT/$variant.review.jsonl"; } \
    && echo "$variant: records identical to the one-process run"
done
python - "$INPUT" "$OUT" local $VARIANTS <<'PY'
import json, sys
from pathlib import Path
source, out = Path(sys.argv[1]), Path(sys.argv[2])
n_in = sum(1 for line in source.open("rb") if line.strip())
for variant in sys.argv[3:]:
    s = json.loads((out / f"{variant}.summary.json").read_text())
    n_out = sum(1 for _ in (out / f"{variant}.jsonl").open())
    n_err = sum(1 for _ in (out / f"{variant}.errors.jsonl").open())
    ids = [json.loads(line)["id"] for line in (out / f"{variant}.jsonl").open()]
    print(f"{variant}: input {n_in} = output {n_out} + errors {n_err}: {n_in == n_out + n_err}; "
          f"duplicate ids {len(ids) - len(set(ids))}; summary {json.dumps({k: s[k] for k in ('records', 'annotated', 'errors')})}")
    if variant != "local":
        with (out / "local.jsonl").open() as a, (out / f"{variant}.jsonl").open() as b:
            differ = sum(x != y for x, y in zip(a, b))
        print(f"{variant}: {differ} records differ from the one-process run")
    review = out / f"{variant}.review.jsonl"
    if review.exists():
        kept = sum(len(json.loads(line)["entities"]) for line in (out / f"{variant}.jsonl").open())
        sent = sum(len(json.loads(line)["entities"]) for line in review.open())
        print(f"{variant}: entities kept {kept} + sent to review {sent} = {kept + sent}; "
              f"summary {json.dumps({k: v for k, v in s.items() if 'entit' in k})}")
PY
