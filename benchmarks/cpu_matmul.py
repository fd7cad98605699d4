"""What multiplying through numpy instead of thinc's BLIS (`spacy_domain_ner.numpy_matmul.v1`) changes.

For a trained pipeline and texts, in one process:

1. one matrix product of the cased CNN's shape (`--rows` × 480 times 480 × 288), thinc's BLIS
   gemm against numpy's, the best of `--rounds`;
2. the confidence replay (`greedy_entity_scores`, the NER's tok2vec and parse with scores) over the
   texts in parts of 4 Docs, the NER's layers on BLIS and on numpy, alternating for `--rounds`;
3. the whole pipeline's entities and confidences on both: how many entities differ, and the
   largest change of a confidence.

    python benchmarks/cpu_matmul.py PIPELINE corpus/legal/dev.spacy --limit 80 --rounds 3
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_pipeline import load_texts  # noqa: E402

NER_PIPES = ("transformer",)  # what the replay needs to have run on the Docs


def gemm_seconds(ops: Any, *, rows: int, rounds: int) -> float:
    import numpy

    rng = numpy.random.default_rng(0)
    x, w = rng.random((rows, 480), dtype="float32"), rng.random((288, 480), dtype="float32")
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        ops.gemm(x, w, trans2=True)
        best = min(best, time.perf_counter() - start)
    return best


def predictions(nlp: Any, texts: Sequence[str]) -> List[List[tuple]]:
    return [[(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=16)]


def compare(blis: List[List[tuple]], numpy_: List[List[tuple]]) -> Dict[str, Any]:
    """Entities in one run and not the other, and the largest confidence change of an entity in both."""
    differing, largest = 0, 0.0
    for a, b in zip(blis, numpy_):
        differing += len({e[:3] for e in a} ^ {e[:3] for e in b})
        conf_b = {e[:3]: e[3] for e in b}
        for key, conf in ((e[:3], e[3]) for e in a):
            if conf is not None and conf_b.get(key) is not None:
                largest = max(largest, abs(conf - conf_b[key]))
    return {"entities": sum(len(a) for a in blis), "differing": differing, "largest_confidence_change": largest}


def measure(pipeline: str, texts_path: Path, *, limit: Optional[int], rounds: int, rows: int) -> Dict[str, Any]:
    import spacy
    import torch
    from thinc.api import NumpyOps

    from spacy_domain_ner.evaluation.confidence import greedy_entity_scores
    from spacy_domain_ner.models.cpu_ops import set_cpu_ops

    torch.set_num_threads(2)
    texts = load_texts(texts_path, limit=limit)
    nlp = spacy.load(pipeline)
    ops = {"blis": NumpyOps(use_blis=True), "numpy": NumpyOps(use_blis=False)}
    result: Dict[str, Any] = {"pipeline": pipeline, "texts": str(texts_path), "n_texts": len(texts), "rounds": rounds,
                              "gemm_seconds": {name: gemm_seconds(o, rows=rows, rounds=rounds) for name, o in ops.items()},
                              "gemm_shape": [rows, 480, 288]}
    ner = nlp.get_pipe("ner")
    docs = list(nlp.pipe(texts, batch_size=16, disable=[n for n in nlp.pipe_names if n not in NER_PIPES]))
    replay: Dict[str, List[float]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, o in ops.items():
            set_cpu_ops(nlp, o)
            start = time.perf_counter()
            for i in range(0, len(docs), 4):
                greedy_entity_scores(ner, docs[i:i + 4])
            replay[name].append(time.perf_counter() - start)
    result["replay_seconds"] = replay
    runs = {}
    for name, o in ops.items():
        set_cpu_ops(nlp, o)
        runs[name] = predictions(nlp, texts)
    result["pipeline_entities"] = compare(runs["blis"], runs["numpy"])
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", help="Pipeline directory or package name")
    parser.add_argument("texts", type=Path, help="Texts: .spacy, .jsonl ('text') or .txt")
    parser.add_argument("--limit", type=int, default=None, help="First N texts")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds of each timing")
    parser.add_argument("--rows", type=int, default=30000, help="Rows (tokens) of the timed matrix product")
    parser.add_argument("--output", "-o", type=Path, default=None, help="Also write the result as JSON")
    args = parser.parse_args(argv)
    result = measure(args.pipeline, args.texts, limit=args.limit, rounds=args.rounds, rows=args.rows)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
