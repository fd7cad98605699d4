#!/usr/bin/env bash
# The cures at one budget on one GPU: the hybrid recipe (configs/ner_hybrid.cfg) at a GPU
# batch, and its variants, trained side by side (one process each, all on GPU 0), each to its
# step budget or the time bound, then every model-best scored with and without the knowledge base.
# Runs after `benchmarks/gpu_check.sh --install-only` on the same machine (it finds its gpu_site under $TMPDIR).
#   base, base_s1    the recipe, seeds 0 and 1 (the noise between seeds)
#   lr2e4            the encoder's learning rate doubled (2e-4; the heads keep 10x)
#   adv05, adv2      FGM adversarial training on the embeddings, epsilon 0.5 and 2.0
#   headonly         the encoder frozen (the listener passes no gradient): the head-only control
#   dapt, dapt_head  the same two on the encoder after one epoch of masked-LM training on CUAD
#   mixed            legal + CoNLL (PER/LOC mapped, ORG/MISC missing), one head, ratio 0.5
#   multitask        legal head + general_ner head on CoNLL, ratio 0.5
# usage: benchmarks/gpu_cures.sh [--cpu] [--payload DIR] [--work DIR] [--out DIR] [--deadline S]
#            [--steps N] [--batch-size N] [--eval-every N] [--only a,b] [--dapt-epochs X]
#   PAYLOAD (build/gpu) holds model/ and cures/ (E-NER train/dev, FIN5, CoNLL train/dev/test
#   DocBins, cuad.jsonl.xz; benchmarks/README.md). DEADLINE: seconds from the start by which
#   everything, scoring included, should be done (training is bounded to leave room for it).
#   OUT receives one file, cures.tar.gz (learning curves, logs, metrics), and summary.tsv.
set -uo pipefail
PAYLOAD=build/gpu; WORK=${TMPDIR:-/tmp}/gpu_cures; RESULTS=${OUT:-benchmarks/out/gpu_cures}
GPU=0; DEADLINE=500; STEPS=500; BATCH=8000; EVAL=50; ONLY=""; DAPT_EPOCHS=1; SCORE_RESERVE=150
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) GPU=-1 ;;
    --payload) PAYLOAD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --out) RESULTS=$2; shift ;;
    --deadline) DEADLINE=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --batch-size) BATCH=$2; shift ;;
    --eval-every) EVAL=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --dapt-epochs) DAPT_EPOCHS=$2; shift ;;
    --score-reserve) SCORE_RESERVE=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
SITE=${GPU_SITE:-${TMPDIR:-/tmp}/gpu_site}
[ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
start=$SECONDS
stamp() { echo "== [$((SECONDS - start)) s] $*"; }
D=$PAYLOAD/cures; MODEL=$PAYLOAD/model; L2C=configs/labels/ener_to_conll.json
for f in "$MODEL/config.json" "$D/train.spacy" "$D/dev.spacy" "$D/fin5.spacy" "$D/testb.spacy" "$D/news_train.spacy" "$D/news_dev.spacy" "$D/cuad.jsonl.xz"; do
  [ -f "$f" ] || { echo "error: $f is missing (benchmarks/README.md: gpu_cures.sh)" >&2; exit 2; }
done
rm -rf "$WORK"; mkdir -p "$WORK/logs" "$WORK/metrics" "$RESULTS"
MIXED=$([ "$GPU" -ge 0 ] && echo true || echo false)
wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
mkdir -p "$WORK/configs" && cp configs/*.cfg "$WORK/configs/"  # the configs trained, packed with the results
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')"

# The knowledge base and case forms, mined from the training corpus as the workflow does (CPU).
( "$PY" -m spacy_domain_ner mine-kb "$D/train.spacy" --curated assets/knowledge/legal_kb.jsonl -o "$WORK/kb.jsonl" \
    --report "$WORK/metrics/kb_report.json" && "$PY" -m spacy_domain_ner mine-case-forms "$D/train.spacy" -o "$WORK/case_forms.json"
) > "$WORK/logs/kb.log" 2>&1 &
kb_pid=$!

train() {  # NAME CONFIG TRANSFORMER SEED [overrides...]
  local name=$1 config=$2 transformer=$3 seed=$4; shift 4
  local bound=$((DEADLINE - (SECONDS - start) - SCORE_RESERVE - 45))  # 45 s: loading and initializing
  [ "$bound" -gt 30 ] || { echo "$name: no time left to train" > "$WORK/logs/$name.log"; return 1; }
  timeout --kill-after=20 $((bound + 120)) "$PY" -m spacy train "$config" --output "$WORK/training/$name" --gpu-id "$GPU" \
    --code benchmarks/gpu_logger.py --paths.train "$D/train.spacy" --paths.dev "$D/dev.spacy" --paths.transformer "$transformer" \
    --components.transformer.model.mixed_precision "$MIXED" --components.transformer.model.grad_scaler_config.enabled "$MIXED" \
    --training.batcher.size "$BATCH" --training.max_steps "$STEPS" --training.eval_frequency "$EVAL" \
    --training.optimizer.learn_rate.warmup_steps $((STEPS / 20)) --system.seed "$seed" \
    --training.logger.@loggers gpu_check.WordsLogger.v1 --training.logger.path "$WORK/metrics/$name.last.json" \
    --training.logger.output_file "$WORK/metrics/$name.curve.jsonl" --training.logger.max_seconds "$bound" "$@" \
    > "$WORK/logs/$name.log" 2>&1
}

score() {  # NAME: model-best, then with the knowledge base, on E-NER dev (7 and 4 classes), FIN5, CoNLL test
  local name=$1 model=$WORK/training/$1/model-best
  [ -d "$model" ] || { echo "$name: no model-best" >> "$WORK/logs/score.log"; return 1; }
  ev() { "$PY" -m spacy_domain_ner evaluate "$@" --gpu-id "$GPU" --no-progress > /dev/null; }
  timeout 60 "$PY" -m spacy_domain_ner add-knowledge "$model" "$WORK/kb.jsonl" "$WORK/training/$name/fusion" --mode override \
    --consistency --case-forms "$WORK/case_forms.json" --restore-kinds upper,lower,title --passage-words 2 \
    > "$WORK/logs/$name.kb.log" 2>&1
  for variant in plain kb; do
    local m=$model; [ $variant = kb ] && m=$WORK/training/$name/fusion
    [ -d "$m" ] || continue
    local o=$WORK/metrics/${name}_$variant
    ev "$m" "$D/dev.spacy" -o "${o}_ener7.json"
    ev "$m" "$D/dev.spacy" -o "${o}_ener4.json" --gold-map $L2C --pred-map $L2C
    ev "$m" "$D/fin5.spacy" -o "${o}_fin5.json" --pred-map $L2C
    ev "$m" "$D/testb.spacy" -o "${o}_conll.json" --pred-map $L2C
  done 2>> "$WORK/logs/$name.score.log"
  if [ "$name" = base ]; then  # the robustness suite for the recipe, with the KB
    ev "$WORK/training/$name/fusion" "$D/dev.spacy" -o "$WORK/metrics/base_kb_robustness.json" --robustness --pool "$D/train.spacy" \
      2>> "$WORK/logs/$name.score.log"
  fi
}

pack() {
  "$PY" - "$WORK" > "$RESULTS/summary.tsv" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1]); m = work / "metrics"
print("run\tlast_step\tseconds\tstopped_by_time\tbest_dev\tbest_step\tplain7\tplain4\tplain_fin5\tplain_conll\tkb7\tkb4\tkb_fin5\tkb_business")
for last in sorted(m.glob("*.last.json")):
    name = last.name[: -len(".last.json")]
    info = json.loads(last.read_text())
    curve = [json.loads(l) for l in (m / f"{name}.curve.jsonl").read_text().splitlines() if l.strip()] if (m / f"{name}.curve.jsonl").exists() else []
    best = max(curve, key=lambda r: r.get("score") or 0, default={})
    def f(kind, key="ents_f"):
        p = m / f"{name}_{kind}.json"
        if not p.exists():
            return ""
        d = json.loads(p.read_text())
        v = d.get(key) if "/" not in key else d["ents_per_type"].get(key.split("/")[1], {}).get("f")
        return f"{100 * v:.2f}" if isinstance(v, (int, float)) else ""
    row = [name, info.get("step"), f"{info.get('seconds', 0):.0f}", info.get("stopped_by_time", False),
           f"{100 * (best.get('score') or 0):.2f}", best.get("step", ""),
           f("plain_ener7"), f("plain_ener4"), f("plain_fin5"), f("plain_conll"),
           f("kb_ener7"), f("kb_ener4"), f("kb_fin5"), f("kb_ener7", "x/BUSINESS")]
    print("\t".join(str(x) for x in row))
PY
  cp "$RESULTS/summary.tsv" "$WORK/metrics/"
  tar -czf "$RESULTS/cures.tar.gz" -C "$WORK" metrics logs configs 2>/dev/null
}

# Past the deadline (+15 s), what still runs is stopped so that the results are packed in time.
( sleep $((DEADLINE + 15)); echo "deadline: stopping what is left"; pkill -f "spacy_domain_ner (pretrain|evaluate|add-knowledge)|spacy train" ) &
watchdog=$!
stamp "training the variants (batch $BATCH, at most $STEPS steps, deadline $DEADLINE s, $SCORE_RESERVE s kept for scoring)"
H=configs/ner_hybrid.cfg
pids=()
run() { wanted "$1" || return 0; train "$@" & pids+=($!); }
run base "$H" "$MODEL" 0
run base_s1 "$H" "$MODEL" 1
run lr2e4 "$H" "$MODEL" 0 --training.optimizer.learn_rate.initial_rate 0.0002
run adv05 "$H" "$MODEL" 0 --initialize.after_init.enabled true --initialize.after_init.epsilon 0.5
run adv2 "$H" "$MODEL" 0 --initialize.after_init.enabled true --initialize.after_init.epsilon 2.0
run headonly "$H" "$MODEL" 0 --components.ner.model.tok2vec.listener.grad_factor 0.0
run mixed configs/ner_mixed.cfg "$MODEL" 0 --paths.general_train "$D/news_train.spacy" \
  --paths.general_label_map configs/labels/conll_to_legal.json --corpora.train.ratio 0.5
run multitask configs/ner_multitask.cfg "$MODEL" 0 --paths.general_train "$D/news_train.spacy" \
  --paths.general_dev "$D/news_dev.spacy" --corpora.train.ratio 0.5
if wanted dapt || wanted dapt_head; then
  (
    xz -dc "$D/cuad.jsonl.xz" > "$WORK/cuad.jsonl"
    device=$([ "$GPU" -ge 0 ] && echo cuda || echo cpu)
    timeout $((DEADLINE / 3)) "$PY" -m spacy_domain_ner pretrain "$WORK/cuad.jsonl" -o "$WORK/dapt" --model "$MODEL" --max-length 128 \
      -b 64 --epochs "$DAPT_EPOCHS" --lr 1e-4 --warmup-ratio 0.06 --seed 0 --device "$device" --num-workers 4 \
      --ner-dev "$D/dev.spacy" --metrics "$WORK/metrics/dapt_pretrain.json" --overwrite > "$WORK/logs/dapt_pretrain.log" 2>&1 \
      || { echo "pretraining failed"; exit 1; }
    wanted dapt && train dapt "$H" "$WORK/dapt" 0 &
    wanted dapt_head && train dapt_head "$H" "$WORK/dapt" 0 --components.ner.model.tok2vec.listener.grad_factor 0.0 &
    wait
  ) & pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done
stamp "trained: $(ls "$WORK/training" 2>/dev/null | tr '\n' ' ')"
for log in "$WORK"/logs/*.log; do grep -l -E "Traceback|Error" "$log" > /dev/null && { echo "--- $log"; tail -5 "$log"; }; done

wait "$kb_pid" || { echo "--- mining the knowledge base failed"; tail -5 "$WORK/logs/kb.log"; }
stamp "scoring"
spids=()
for dir in "$WORK"/training/*/; do score "$(basename "$dir")" & spids+=($!); done
for pid in "${spids[@]}"; do wait "$pid"; done
kill "$watchdog" 2>/dev/null
pack
column -t -s $'\t' "$RESULTS/summary.tsv"
stamp "done: $RESULTS/cures.tar.gz"
