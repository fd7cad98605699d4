"""Calibration maps compared out of sample on a gold DocBin (docs/lab/confidence.md): the ECE, AUC and
precision above 0.8 of the NER's entity confidences, each map fitted on one half of the docs and
measured on the other (two splits: interleaved docs, and the first half against the second).

usage: OMP_NUM_THREADS=1 python benchmarks/calibration_methods.py MODEL [DEV.spacy]

Maps: the temperature alone; temperature + isotonic map (what `add-confidence` fits); isotonic on
the minimum instead of the geometric mean; Platt scaling of the score's log-odds; a logistic
regression on the log-odds of both aggregates and the entity's log length.
"""
import sys

import numpy
import spacy
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from spacy_domain_ner.evaluation.calibration import expected_calibration_error, fit_temperature, scored_predictions
from spacy_domain_ner.evaluation.confidence import entity_confidence
from spacy_domain_ner.evaluation.evaluate import load_gold


def log_odds(p: numpy.ndarray) -> numpy.ndarray:
    p = numpy.clip(p, 1e-6, 1 - 1e-6)
    return numpy.log(p / (1 - p))


def main(model: str, dev: str = "corpus/ener/dev.spacy") -> None:
    nlp = spacy.load(model)
    if "entity_confidence" not in nlp.pipe_names:
        nlp.add_pipe("entity_confidence", before="ner")
    gold = load_gold(dev)
    per_doc = [scored_predictions(nlp, [doc]) for doc in gold]
    rows = [(i, steps, ok) for i, doc_rows in enumerate(per_doc) for steps, ok in doc_rows]
    docs = numpy.array([i for i, _, _ in rows])
    ok = numpy.array([c for _, _, c in rows], dtype=float)
    splits = {"interleaved": docs % 2 == 0, "first half": docs < len(gold) / 2}
    for split, mask in splits.items():
        results = {}
        for fit_on in (mask, ~mask):
            score_on = ~fit_on
            temperature = fit_temperature([(rows[i][1], rows[i][2]) for i in numpy.flatnonzero(fit_on)])
            g = numpy.array([entity_confidence(s, temperature=temperature) for _, s, _ in rows])
            m = numpy.array([entity_confidence(s, temperature=temperature, aggregate="min") for _, s, _ in rows])
            n = numpy.array([len(s) for _, s, _ in rows], dtype=float)
            features = numpy.c_[log_odds(g), log_odds(m), numpy.log(n)]
            maps = {
                "temperature": g[score_on],
                "temperature + isotonic": IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(g[fit_on], ok[fit_on]).predict(g[score_on]),
                "min + isotonic": IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(m[fit_on], ok[fit_on]).predict(m[score_on]),
                "Platt": LogisticRegression().fit(features[fit_on, :1], ok[fit_on]).predict_proba(features[score_on, :1])[:, 1],
                "logistic regression": LogisticRegression(max_iter=1000).fit(features[fit_on], ok[fit_on]).predict_proba(features[score_on])[:, 1],
            }
            for name, confidences in maps.items():
                results.setdefault(name, []).append((confidences, ok[score_on]))
        for name, parts in results.items():
            c = numpy.concatenate([p for p, _ in parts])
            y = numpy.concatenate([t for _, t in parts])
            high = c >= 0.8
            print(f"{split:11s} {name:22s} ECE {expected_calibration_error(c, y.astype(bool))['ece']:.3f} "
                  f"AUC {roc_auc_score(y, c):.3f}  >= 0.8: {int(high.sum())} at precision {y[high].mean():.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
