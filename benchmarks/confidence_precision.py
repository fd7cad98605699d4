"""Precision of a pipeline's entities above confidence thresholds, and their ECE, on a gold DocBin
(docs/lab/confidence.md).

usage: python benchmarks/confidence_precision.py MODEL [DEV.spacy]

An entity is correct when its character span and label match a gold entity; entities without
`ent._.confidence` are reported but not thresholded.
"""
import sys
from typing import List, Optional, Tuple

import spacy
from spacy.tokens import DocBin

THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)


def scored_entities(model: str, dev: str) -> List[Tuple[Optional[float], bool]]:
    nlp = spacy.load(model)
    gold = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    rows = []
    for pred, ref in zip(nlp.pipe([g.text for g in gold], batch_size=32), gold):
        truth = {(e.start_char, e.end_char, e.label_) for e in ref.ents}
        rows.extend((e._.confidence, (e.start_char, e.end_char, e.label_) in truth) for e in pred.ents)
    return rows


def main(model: str, dev: str = "corpus/ener/dev.spacy") -> None:
    rows = scored_entities(model, dev)
    scored = [(c, ok) for c, ok in rows if c is not None]
    from spacy_domain_ner.evaluation.calibration import expected_calibration_error, precision_above

    confidences, correct = [c for c, _ in scored], [ok for _, ok in scored]
    print(f"entities {len(rows)}, with a confidence {len(scored)}")
    print(f"ECE of every scored entity (NER and knowledge base): {expected_calibration_error(confidences, correct)['ece']:.3f}")
    for row in precision_above(confidences, correct, thresholds=THRESHOLDS):
        print(f"threshold {row['threshold']}: kept {row['kept']}, precision {row['precision'] or 0.0:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
