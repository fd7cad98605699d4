"""Cost of the entity-confidence pass: a pipeline's throughput with and without `entity_confidence`
(docs/lab/confidence.md).

usage: OMP_NUM_THREADS=1 python benchmarks/confidence_cost.py MODEL [DEV.spacy] [REPEATS]

Runs the pipeline over the gold texts, alternating with and without the component, and reports
the process CPU seconds of each pass (the median of REPEATS) and words per CPU second; the cost is
the relative difference. CPU seconds, not wall seconds, so that a busy machine does not bias it.
"""
import statistics
import sys
import time

import spacy
from spacy.tokens import DocBin


def cpu_seconds(nlp, texts, *, disable=()) -> float:
    start = time.process_time()
    with nlp.select_pipes(disable=list(disable)):
        for _ in nlp.pipe(texts, batch_size=32):
            pass
    return time.process_time() - start


def main(model: str, dev: str = "corpus/ener/dev.spacy", repeats: str = "3") -> None:
    nlp = spacy.load(model)
    if "entity_confidence" not in nlp.pipe_names:
        raise SystemExit(f"{model}: no entity_confidence component")
    texts = [doc.text for doc in DocBin().from_disk(dev).get_docs(nlp.vocab)]
    words = sum(len(t.split()) for t in texts)
    cpu_seconds(nlp, texts[:8])  # warm-up
    with_it, without = [], []
    for _ in range(int(repeats)):
        with_it.append(cpu_seconds(nlp, texts))
        without.append(cpu_seconds(nlp, texts, disable=["entity_confidence"]))
    a, b = statistics.median(with_it), statistics.median(without)
    print(f"{len(texts)} texts, {words} words; median of {repeats} passes (CPU s)")
    print(f"with entity_confidence:    {a:.1f} s, {words / a:.0f} words/CPU-s")
    print(f"without entity_confidence: {b:.1f} s, {words / b:.0f} words/CPU-s")
    print(f"cost of the confidence pass: {100 * (a - b) / b:+.1f}%")


if __name__ == "__main__":
    main(*sys.argv[1:4])
