#!/usr/bin/env bash
# Knowledge fusion on a trained legal model: no KB, then each fusion mode with the curated KB
# and with curated + mined KB; each variant scored on the dev set (7 classes); the model without
# KB and the best variant also with the robustness suite on the dev set mapped to 4 classes.
# Writes OUT/<variant>.json and prints a Markdown table.
# usage: benchmarks/kb_modes.sh MODEL_DIR TRAIN.spacy DEV.spacy [OUT_DIR]
set -euo pipefail
MODEL=${1:?usage: kb_modes.sh MODEL_DIR TRAIN.spacy DEV.spacy [OUT_DIR]}
TRAIN=${2:?}; DEV=${3:?}; OUT=${4:-benchmarks/out/kb}
mkdir -p "$OUT"
python -m spacy_domain_ner mine-kb "$TRAIN" -o "$OUT/mined.jsonl" --report "$OUT/mined.report.json"
python -m spacy_domain_ner mine-kb "$TRAIN" --curated assets/knowledge/legal_kb.jsonl -o "$OUT/merged.jsonl" --report "$OUT/merged.report.json"
score() {  # name model
  python -m spacy_domain_ner evaluate "$2" "$DEV" -o "$OUT/$1.json" --no-progress
}
robust() {  # name model
  python -m spacy_domain_ner evaluate "$2" "$DEV" -o "$OUT/$1_on_legal.json" --no-progress \
    --gold-map configs/labels/ener_to_conll.json --pred-map configs/labels/ener_to_conll.json --robustness --pool "$TRAIN"
}
kb_path() { if [ "$1" = merged ]; then echo "$OUT/merged.jsonl"; else echo assets/knowledge/legal_kb.jsonl; fi; }
score no_kb "$MODEL"; robust no_kb "$MODEL"
for kb in curated merged; do
  for mode in fill override trusted; do
    python -m spacy_domain_ner add-knowledge "$MODEL" "$(kb_path $kb)" "$OUT/model_${kb}_$mode" --mode $mode
    score "${kb}_$mode" "$OUT/model_${kb}_$mode"
    rm -rf "$OUT/model_${kb}_$mode"
  done
done
best=$(python -c "import json, sys; names = [f'{k}_{m}' for k in ('curated', 'merged') for m in ('fill', 'override', 'trusted')]; \
print(max(names, key=lambda n: json.load(open(f'{sys.argv[1]}/{n}.json'))['ents_f']))" "$OUT")
kb=${best%_*}; mode=${best##*_}
python -m spacy_domain_ner add-knowledge "$MODEL" "$(kb_path $kb)" "$OUT/model_best" --mode "$mode"
robust "$best" "$OUT/model_best"; rm -rf "$OUT/model_best"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
labels = ["BUSINESS", "GOVERNMENT", "COURT", "LOCATION", "PERSON", "LEGISLATION/ACT", "MISCELLANEOUS"]
print("| variant | P | R | F | " + " | ".join(labels) + " | F (4 classes, clean) | upper | lower | title | typos | swap | whitespace | punctuation |")
print("|---" * (5 + len(labels) + 8) + "|")
for name in ["no_kb"] + [f"{kb}_{m}" for kb in ("curated", "merged") for m in ("fill", "override", "trusted")]:
    m = json.loads((out / f"{name}.json").read_text())
    per = [f"{100 * m['ents_per_type'][l]['f']:.1f}" if l in m["ents_per_type"] else "–" for l in labels]
    rows = ["–"] * 8
    if (out / f"{name}_on_legal.json").exists():
        m4 = json.loads((out / f"{name}_on_legal.json").read_text())
        rob = {r["perturbation"]: r for r in m4["robustness"]["rows"]}
        rows = [f"{100 * m4['ents_f']:.1f}"] + [f"{100 * rob[k]['ents_f']:.1f}" if k in rob else "skipped" for k in ("upper", "lower", "title", "typos", "swap", "whitespace", "punctuation")]
    print(f"| {name} | {100*m['ents_p']:.1f} | {100*m['ents_r']:.1f} | {100*m['ents_f']:.1f} | " + " | ".join(per) + " | " + " | ".join(rows) + " |")
PY
