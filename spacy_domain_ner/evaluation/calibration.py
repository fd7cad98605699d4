"""Calibrating entity confidence on gold Docs: the temperature of least log loss, the expected
calibration error (ECE) with its bins, and the reliability diagram.
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from .confidence import entity_confidence, greedy_entity_scores


def scored_predictions(nlp: Language, gold_docs: Sequence[Doc], *, name: str = "entity_confidence",
                       batch_size: int = 32) -> List[Tuple[List[Tuple[numpy.ndarray, int]], bool]]:
    """Every NER entity predicted on the gold texts, with its action scores and whether it is
    correct (the same characters and label as a gold entity).

    nlp (Language): A pipeline with the confidence component.
    gold_docs (Sequence[Doc]): Gold Docs.
    name (str): The confidence component's name.
    batch_size (int): Docs a batch.
    RETURNS (List[Tuple[List[Tuple[numpy.ndarray, int]], bool]]): (steps, correct) per entity.
    """
    ner_name = nlp.get_pipe(name).cfg["ner"]
    ner = nlp.get_pipe(ner_name)
    before = [p for p in nlp.pipe_names[:nlp.pipe_names.index(ner_name)] if p != name]
    result = []
    with nlp.select_pipes(enable=before):  # the docs as ner receives them
        for batch in minibatch(gold_docs, size=batch_size):
            docs = list(nlp.pipe([gold.text for gold in batch]))
            for doc, gold, entities in zip(docs, batch, greedy_entity_scores(ner, docs)):
                truth = {(e.start_char, e.end_char, e.label_) for e in gold.ents}
                for start, end, label, steps in entities:
                    span = doc[start:end]
                    result.append((steps, (span.start_char, span.end_char, label) in truth))
    return result


def fit_temperature(predictions: Sequence[Tuple[List[Tuple[numpy.ndarray, int]], bool]], *, aggregate: str = "gmean",
                    grid: Sequence[float] = tuple(numpy.geomspace(0.1, 10.0, 61))) -> float:
    """The temperature (of the grid) whose confidences have the least log loss against correctness.

    predictions (Sequence[Tuple[List[Tuple[numpy.ndarray, int]], bool]]): From `scored_predictions`.
    aggregate (str): As in `entity_confidence`.
    grid (Sequence[float]): Candidate temperatures.
    RETURNS (float): The best temperature; 1.0 without predictions.
    """
    if not predictions:
        return 1.0
    correct = numpy.array([c for _, c in predictions], dtype=float)

    def log_loss(temperature: float) -> float:
        conf = numpy.clip([entity_confidence(s, temperature=temperature, aggregate=aggregate) for s, _ in predictions], 1e-6, 1 - 1e-6)
        return float(-(correct * numpy.log(conf) + (1 - correct) * numpy.log(1 - conf)).mean())

    return float(min(grid, key=log_loss))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], *, n_bins: int = 10) -> Dict[str, Any]:
    """Expected calibration error over equal-width confidence bins.

    confidences (Sequence[float]): Confidence per entity, in [0, 1].
    correct (Sequence[bool]): Whether each entity is correct.
    n_bins (int): Bins over [0, 1].
    RETURNS (Dict[str, Any]): ece (the count-weighted mean |accuracy - confidence|; None without
        entities), n, and bins: lo, hi, count, confidence (mean), accuracy.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, not {n_bins}")
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    conf, hits = numpy.asarray(confidences, dtype=float), numpy.asarray(correct, dtype=float)
    index = numpy.minimum((conf * n_bins).astype(int), n_bins - 1)  # 1.0 goes into the last bin
    bins, ece = [], 0.0
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        row = {"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": count,
               "confidence": float(conf[members].mean()) if count else None, "accuracy": float(hits[members].mean()) if count else None}
        if count:
            ece += count / len(conf) * abs(row["accuracy"] - row["confidence"])
        bins.append(row)
    return {"ece": ece if len(conf) else None, "n": int(len(conf)), "bins": bins}


def plot_reliability(calibration: Dict[str, Any], path: Path, *, title: str = "Entity confidence: reliability") -> Path:
    """Write a reliability diagram (accuracy per confidence bin against the diagonal) as a PNG.

    calibration (Dict[str, Any]): An `expected_calibration_error` result.
    path (Path): The PNG file.
    title (str): The chart's title.
    RETURNS (Path): The path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [b for b in calibration["bins"] if b["count"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.bar([(b["lo"] + b["hi"]) / 2 for b in rows], [b["accuracy"] for b in rows],
           width=[b["hi"] - b["lo"] for b in rows], edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([b["confidence"] for b in rows], [b["accuracy"] for b in rows], marker="o", color="black", linewidth=0)
    ece = calibration["ece"]
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="share correct",
           title=f"{title}\nECE {ece:.3f}, {calibration['n']} entities" if ece is not None else title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def calibrate(nlp: Language, gold_docs: Sequence[Doc], *, name: str = "entity_confidence", n_bins: int = 10) -> Dict[str, Any]:
    """Fit the confidence component's temperature on gold docs (in place) and report calibration.

    nlp (Language): A pipeline with the confidence component.
    gold_docs (Sequence[Doc]): Gold Docs (a dev set).
    name (str): The confidence component's name.
    n_bins (int): Bins of the expected calibration error.
    RETURNS (Dict[str, Any]): temperature, before and after (`expected_calibration_error` at the
        previous and the fitted temperature).
    """
    component = nlp.get_pipe(name)
    predictions = scored_predictions(nlp, gold_docs, name=name)
    correct = [c for _, c in predictions]

    def calibration(temperature: float) -> Dict[str, Any]:
        confidences = [entity_confidence(s, temperature=temperature, aggregate=component.cfg["aggregate"]) for s, _ in predictions]
        return expected_calibration_error(confidences, correct, n_bins=n_bins)

    before = calibration(component.cfg["temperature"])
    component.cfg["temperature"] = fit_temperature(predictions, aggregate=component.cfg["aggregate"])
    return {"temperature": component.cfg["temperature"], "before": before, "after": calibration(component.cfg["temperature"])}
