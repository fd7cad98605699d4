#!/usr/bin/env bash
# Scores trained pipelines on E-NER dev (7 classes and mapped to 4), CoNLL test and FIN5, as in the
# DAPT and multi-task sections of docs/lab/cures.md (2026-11-29). A pipeline with a general_ner head is also
# scored through doc.spans["general"]; a news model (CoNLL labels) without label maps.
# usage: benchmarks/score_variants.sh OUT_DIR NAME=MODEL_DIR [NAME=MODEL_DIR ...]
# env: ENER_DEV (corpus/ener/dev.spacy), CONLL_TEST (corpus/conll/testb.spacy), FIN5 (corpus/fin5.spacy);
#      ROBUSTNESS_POOL (a DocBin, e.g. corpus/ener/train.spacy): also run the robustness suite on E-NER dev (7 classes)
set -euo pipefail
OUT=${1:?usage: score_variants.sh OUT_DIR NAME=MODEL_DIR ...}; shift
ENER_DEV=${ENER_DEV:-corpus/ener/dev.spacy}; CONLL_TEST=${CONLL_TEST:-corpus/conll/testb.spacy}; FIN5=${FIN5:-corpus/fin5.spacy}
L2C=configs/labels/ener_to_conll.json
mkdir -p "$OUT"
ev() { python -m spacy_domain_ner evaluate "$@" --no-progress | sed -n 1p; }  # sed reads to the end: no SIGPIPE
for pair in "$@"; do
  name=${pair%%=*}; model=${pair#*=}
  echo "== $name ($model)"
  if python -c "import spacy, sys; sys.exit(0 if 'BUSINESS' in spacy.load(sys.argv[1]).get_pipe('ner').labels else 1)" "$model"; then
    ev "$model" "$ENER_DEV" -o "$OUT/${name}_ener7.json" ${ROBUSTNESS_POOL:+--robustness --pool "$ROBUSTNESS_POOL"}
    ev "$model" "$ENER_DEV" -o "$OUT/${name}_ener4.json" --gold-map $L2C --pred-map $L2C
    ev "$model" "$CONLL_TEST" -o "$OUT/${name}_conll.json" --pred-map $L2C
    ev "$model" "$FIN5" -o "$OUT/${name}_fin5.json" --pred-map $L2C
  else  # a news model: CoNLL labels
    ev "$model" "$ENER_DEV" -o "$OUT/${name}_ener4.json" --gold-map $L2C
    ev "$model" "$CONLL_TEST" -o "$OUT/${name}_conll.json"
    ev "$model" "$FIN5" -o "$OUT/${name}_fin5.json"
  fi
  if python -c "import spacy, sys; sys.exit(0 if 'general_ner' in spacy.load(sys.argv[1]).pipe_names else 1)" "$model"; then
    ev "$model" "$ENER_DEV" -o "$OUT/${name}_general_ener4.json" --spans-key general --gold-map $L2C
    ev "$model" "$CONLL_TEST" -o "$OUT/${name}_general_conll.json" --spans-key general
    ev "$model" "$FIN5" -o "$OUT/${name}_general_fin5.json" --spans-key general
  fi
done
