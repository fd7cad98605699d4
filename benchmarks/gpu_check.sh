#!/usr/bin/env bash
# GPU check of the transformer NER: on one NVIDIA GPU with no network, install spaCy from the
# carried wheels, convert E-NER, train configs/ner_trf.cfg on the GPU with mixed precision for
# a bounded time, evaluate on dev, and print training and inference words/s and the dev F1.
# Sized for one H200: about 1 minute to install (a first call, --install-only), then under
# 8 minutes for conversion, training (at most TRAIN_SECONDS) and evaluation.
# Prepare the payload here first with benchmarks/build_gpu_wheels.sh; benchmarks/README.md
# gives the two device calls.
# usage: benchmarks/gpu_check.sh [--install-only] [--cpu] [--payload DIR] [--work DIR] [--out DIR]
#            [--max-steps N] [--batch-size N] [--train-seconds N] [E_NER_DIR]
#   E_NER_DIR holds train.csv and dev.csv (default: PAYLOAD/data); PAYLOAD defaults to build/gpu
#   (wheels/, model/, data/). The corpus and the trained pipeline go to WORK ($TMPDIR/gpu_check);
#   the log-sized results (summary.json, train_log.json, dev_metrics.json/.md) to OUT
#   (default: $OUT if set, as on the device machine, else benchmarks/out/gpu).
#   --cpu runs the same steps on CPU without mixed precision, to try the script on small data.
set -euo pipefail
PAYLOAD=build/gpu
WORK=${TMPDIR:-/tmp}/gpu_check
RESULTS=${OUT:-benchmarks/out/gpu}
MAX_STEPS=600        # ~12 epochs of E-NER (301k words) at 8000 padded tokens a batch
BATCH_SIZE=8000      # padded tokens a batch: 4x the CPU config's 2000; memory is no limit here
TRAIN_SECONDS=300    # training stops at the first evaluation after which the next would end past this
INSTALL_ONLY=0
GPU=0
ENER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --install-only) INSTALL_ONLY=1 ;;
    --cpu) GPU=-1 ;;
    --payload) PAYLOAD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --out) RESULTS=$2; shift ;;
    --max-steps) MAX_STEPS=$2; shift ;;
    --batch-size) BATCH_SIZE=$2; shift ;;
    --train-seconds) TRAIN_SECONDS=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) ENER=$1 ;;
  esac
  shift
done
ENER=${ENER:-$PAYLOAD/data}
PY=${PYTHON:-python3}
# Installed apart from the image's packages, ahead of them on the path (shadowing transformers 5);
# a later call on the same machine finds them there.
SITE=${GPU_SITE:-${TMPDIR:-/tmp}/gpu_site}
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
start=$SECONDS
stamp() { echo "== [$((SECONDS - start)) s] $*"; }

installed() {  # by metadata: the tree's spacy_domain_ner imports from here uninstalled, without entry points
  "$PY" - <<'PY' 2>/dev/null
from importlib.metadata import version
import spacy, spacy_transformers  # noqa: F401
assert version("transformers").startswith("4.53.") and version("spacy-domain-ner")
PY
}

if installed; then
  stamp "spaCy stack already installed"
else
  if ! ls "$PAYLOAD"/wheels/*.whl > /dev/null 2>&1; then
    echo "error: no wheels in $PAYLOAD/wheels: build them with benchmarks/build_gpu_wheels.sh and carry them" >&2
    exit 2
  fi
  stamp "installing $(find "$PAYLOAD/wheels" -name '*.whl' | wc -l) wheels into $SITE (transformers 4.53.2 shadows the image's 5.x)"
  # A dry run of the resolver first: it takes torch, numpy, typer, requests... from the image
  # and fails here, loudly, if a dependency is neither there nor carried.
  "$PY" -m pip install -q --dry-run --no-index --find-links "$PAYLOAD/wheels" "$PAYLOAD"/wheels/*.whl
  "$PY" -m pip install -q --no-index --no-cache-dir --no-deps --upgrade --target "$SITE" "$PAYLOAD"/wheels/*.whl
  # Not editable: the install must outlive this copy of the tree (a second call sends a new one).
  "$PY" -m pip install -q --no-index --no-cache-dir --no-deps --upgrade --no-build-isolation --target "$SITE" .
  installed || { echo "error: the stack installed in $SITE does not import" >&2; exit 1; }
fi
"$PY" - "$GPU" <<'PY'
import sys
from importlib.metadata import version

import spacy, thinc, torch, transformers
from thinc.api import require_gpu

gpu = int(sys.argv[1])
if gpu >= 0:
    import cupy

    require_gpu(gpu)
device = f"GPU {torch.cuda.get_device_name(gpu)}, cupy {cupy.__version__}" if gpu >= 0 else "CPU"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), spaCy {spacy.__version__} ({spacy.__file__}), thinc {thinc.__version__}, "
      f"spacy-transformers {version('spacy-transformers')}, transformers {transformers.__version__}; {device}")
PY
[ "$INSTALL_ONLY" = 1 ] && { stamp "installed"; exit 0; }

MODEL="$PAYLOAD/model"
[ -f "$MODEL/config.json" ] || { echo "error: no transformer in $MODEL (carry it, see benchmarks/README.md)" >&2; exit 2; }
if [ ! -f "$ENER/train.csv" ] || [ ! -f "$ENER/dev.csv" ]; then
  echo "error: no train.csv and dev.csv in $ENER" >&2
  exit 2
fi
mkdir -p "$WORK" "$RESULTS"
CORPUS="$WORK/corpus"

stamp "converting E-NER from $ENER"
"$PY" -m spacy_domain_ner corpus --train "$ENER/train.csv" --dev "$ENER/dev.csv" --format ener \
  --label-map configs/labels/ener.json -o "$CORPUS"

# The logger (benchmarks/gpu_logger.py) ends training at the first evaluation after which the next
# one would end past TRAIN_SECONDS; model-best is a saved, evaluated checkpoint by then.

WARMUP=$((MAX_STEPS / 10))
# Evaluations (~50 steps apart) are where training can stop: frequent enough that the first one,
# which tells the logger how long an interval takes, comes well before the bound.
EVAL_EVERY=$((MAX_STEPS / 12 > 0 ? MAX_STEPS / 12 : 1))
MIXED=$([ "$GPU" -ge 0 ] && echo true || echo false)
stamp "training configs/ner_trf.cfg (GPU id $GPU): at most $MAX_STEPS steps or about $TRAIN_SECONDS s, $BATCH_SIZE padded tokens a batch"
rm -rf "$WORK/training" "$RESULTS/train_log.json"
# The time bound is the logger's; `timeout` only guards against a hang (init, evaluation).
status=0
timeout --kill-after=20 $((TRAIN_SECONDS + 240)) \
  "$PY" -m spacy train configs/ner_trf.cfg --output "$WORK/training" --gpu-id "$GPU" \
  --code benchmarks/gpu_logger.py \
  --paths.train "$CORPUS/train.spacy" --paths.dev "$CORPUS/dev.spacy" --paths.transformer "$MODEL" \
  --components.transformer.model.mixed_precision "$MIXED" \
  --components.transformer.model.grad_scaler_config.enabled "$MIXED" \
  --training.batcher.size "$BATCH_SIZE" --training.max_steps "$MAX_STEPS" \
  --training.eval_frequency "$EVAL_EVERY" --training.optimizer.learn_rate.warmup_steps "$WARMUP" \
  --training.logger.@loggers gpu_check.WordsLogger.v1 --training.logger.path "$RESULTS/train_log.json" \
  --training.logger.max_seconds "$TRAIN_SECONDS" || status=$?
if [ "$status" -eq 124 ]; then
  echo "training ran into the $((TRAIN_SECONDS + 240)) s guard; evaluating the last model-best"
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
[ -d "$WORK/training/model-best" ] || { echo "error: no model-best: training did not reach an evaluation" >&2; exit 1; }

stamp "evaluating model-best on dev (GPU id $GPU)"
"$PY" -m spacy_domain_ner evaluate "$WORK/training/model-best" "$CORPUS/dev.spacy" \
  --output "$RESULTS/dev_metrics.json" --markdown "$RESULTS/dev_metrics.md" --gpu-id "$GPU" --batch-size 256 --no-progress

"$PY" - "$RESULTS" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
train = json.loads((out / "train_log.json").read_text())
dev = json.loads((out / "dev_metrics.json").read_text())
summary = {
    "train_steps": train["step"], "train_words": train["words"], "train_seconds": train["seconds"],
    "train_words_per_second": train["words"] / train["seconds"],
    "inference_words_per_second": dev["speed"]["words_per_second"], "dev_ents_f": dev["ents_f"],
    "dev_ents_p": dev["ents_p"], "dev_ents_r": dev["ents_r"],
}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(f"training: {summary['train_words']:,} words in {summary['train_seconds']:.0f} s up to step {summary['train_steps']} "
      f"(evaluations included): {summary['train_words_per_second']:,.0f} words/s")
print(f"inference (dev, batch size 256): {summary['inference_words_per_second']:,.0f} words/s")
print(f"dev F1 {100 * summary['dev_ents_f']:.2f} (P {100 * summary['dev_ents_p']:.2f}, R {100 * summary['dev_ents_r']:.2f})")
PY
stamp "done; results in $RESULTS, pipeline in $WORK/training/model-best"
