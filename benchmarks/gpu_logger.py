"""A training logger for bounded GPU runs (benchmarks/gpu_check.sh, benchmarks/gpu_cures.sh).

spaCy's console table through spacy_domain_ner.ConsoleLogger.v1 (with its JSONL learning curve,
`output_file`), plus: after each evaluation (model-best is saved by then) the loop's words and
seconds go to `path`, and training ends if the next evaluation would come after `max_seconds`, so
that model-best is always a saved, evaluated checkpoint. spaCy's loop then still finalizes the
logger and saves model-last. Loaded with `spacy train --code benchmarks/gpu_logger.py`.
"""
import json
import sys
import time
from pathlib import Path
from typing import Optional

from spacy.util import registry


@registry.loggers("gpu_check.WordsLogger.v1")
def words_logger(path: str, max_seconds: float, progress_bar: bool = False, output_file: Optional[str] = None):
    base = registry.get("loggers", "spacy_domain_ner.ConsoleLogger.v1")(progress_bar=progress_bar, output_file=output_file)

    def setup(nlp, stdout=sys.stdout, stderr=sys.stderr):
        log_step, finalize = base(nlp, stdout, stderr)
        start = last = time.perf_counter()

        def step(info):
            nonlocal last
            log_step(info)
            if info is None:
                return
            now = time.perf_counter()
            keep = {k: info[k] for k in ("step", "epoch", "words", "score")}
            keep["seconds"] = now - start
            Path(path).write_text(json.dumps(keep))
            if now + (now - last) - start > max_seconds:
                keep["stopped_by_time"] = True
                Path(path).write_text(json.dumps(keep))
                print(f"time bound: stopping after step {info['step']} ({now - start:.0f} s)", file=stdout)
                raise SystemExit(0)
            last = now

        return step, finalize

    return setup
