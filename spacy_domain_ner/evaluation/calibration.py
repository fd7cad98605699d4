"""Calibrating entity confidence on gold Docs: the temperature of least log loss, then a monotone
map (isotonic regression, scikit-learn) from the tempered score to the share correct; the expected
calibration error (ECE) with its bins, measured in sample and cross-validated (fitted on one half of
the docs, measured on the other), precision above thresholds, and the reliability diagram.
"""
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from .confidence import calibrated, entity_confidence, greedy_entity_scores

# The threshold whose precision `add-confidence` prints in its summary line (the report lists every threshold).
DEFAULT_THRESHOLD = 0.8
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
Predictions = Sequence[Tuple[List[Tuple[numpy.ndarray, int]], bool]]


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


def fit_temperature(predictions: Predictions, *, aggregate: str = "gmean",
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


def reliability_png(calibration: Dict[str, Any], *, title: str = "Entity confidence: reliability") -> bytes:
    """A reliability diagram (accuracy per confidence bin against the diagonal) as PNG bytes.

    calibration (Dict[str, Any]): An `expected_calibration_error` result.
    title (str): The chart's title.
    RETURNS (bytes): The PNG.
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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def plot_reliability(calibration: Dict[str, Any], path: Path, *, title: str = "Entity confidence: reliability") -> Path:
    """Write `reliability_png` to a file.

    calibration (Dict[str, Any]): An `expected_calibration_error` result.
    path (Path): The PNG file.
    title (str): The chart's title.
    RETURNS (Path): The path.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(reliability_png(calibration, title=title))
    return Path(path)


def fit_isotonic(confidences: Sequence[float], correct: Sequence[bool]) -> Optional[Dict[str, List[float]]]:
    """The monotone map from confidence to the share correct (isotonic regression), as knots.

    confidences (Sequence[float]): Confidence per entity (after the temperature).
    correct (Sequence[bool]): Whether each entity is correct.
    RETURNS (Optional[Dict[str, List[float]]]): {"x": knots, "y": values} for `confidence.calibrated`;
        None without entities (the identity).
    """
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    if not len(confidences):
        return None
    try:
        from sklearn.isotonic import IsotonicRegression
    except ImportError:  # pragma: no cover - scikit-learn is in requirements.txt and the calibration extra
        raise ValueError("calibration needs scikit-learn: pip install 'spacy-domain-ner[calibration]'") from None
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(numpy.asarray(confidences, dtype=float), numpy.asarray(correct, dtype=float))
    return {"x": [float(v) for v in model.X_thresholds_], "y": [float(v) for v in model.y_thresholds_]}


def fit_calibration(predictions: Predictions, *, aggregate: str = "gmean") -> Tuple[float, Optional[Dict[str, List[float]]]]:
    """Fit the temperature, then the isotonic map on the tempered confidences.

    predictions (Predictions): From `scored_predictions`.
    aggregate (str): As in `entity_confidence`.
    RETURNS (Tuple[float, Optional[Dict[str, List[float]]]]): The temperature and the map.
    """
    temperature = fit_temperature(predictions, aggregate=aggregate)
    raw = [entity_confidence(s, temperature=temperature, aggregate=aggregate) for s, _ in predictions]
    return temperature, fit_isotonic(raw, [c for _, c in predictions])


def apply_calibration(predictions: Predictions, *, temperature: float, calibration: Optional[Dict[str, List[float]]],
                      aggregate: str = "gmean") -> List[float]:
    """The calibrated confidence of each prediction."""
    return [calibrated(entity_confidence(s, temperature=temperature, aggregate=aggregate), calibration) for s, _ in predictions]


def precision_above(confidences: Sequence[float], correct: Sequence[bool], *, thresholds: Sequence[float] = THRESHOLDS) -> List[Dict[str, Any]]:
    """Per threshold: the entities kept (confidence >= threshold), their share and their precision.

    confidences (Sequence[float]): Confidence per entity.
    correct (Sequence[bool]): Whether each entity is correct.
    thresholds (Sequence[float]): The thresholds.
    RETURNS (List[Dict[str, Any]]): threshold, kept, share, precision (None when none is kept).
    """
    rows = []
    for threshold in thresholds:
        kept = [ok for c, ok in zip(confidences, correct) if c >= threshold]
        rows.append({"threshold": threshold, "kept": len(kept), "share": len(kept) / len(correct) if len(correct) else None,
                     "precision": sum(kept) / len(kept) if kept else None})
    return rows


def calibrate(nlp: Language, gold_docs: Sequence[Doc], *, name: str = "entity_confidence", n_bins: int = 10) -> Dict[str, Any]:
    """Fit the confidence component's temperature and calibration map on gold docs (in place) and
    report calibration, in sample and cross-validated.

    The docs are split in two interleaved halves; each half's entities are scored with a
    temperature and map fitted on the other half, which measures the ECE and the precision above
    thresholds on entities the calibration has not seen. The component then gets the temperature
    and map fitted on all the docs.

    nlp (Language): A pipeline with the confidence component.
    gold_docs (Sequence[Doc]): Gold Docs (a dev set).
    name (str): The confidence component's name.
    n_bins (int): Bins of the expected calibration error.
    RETURNS (Dict[str, Any]): temperature, calibration (the map), before (the component's previous
        settings), after_temperature, after (in sample), cross_validated (out of sample) - each an
        `expected_calibration_error` result - and thresholds (`precision_above`, cross-validated).
    """
    component = nlp.get_pipe(name)
    aggregate = component.cfg["aggregate"]
    halves = [scored_predictions(nlp, gold_docs[0::2], name=name), scored_predictions(nlp, gold_docs[1::2], name=name)]
    predictions = halves[0] + halves[1]
    correct = [c for _, c in predictions]

    def ece(confidences: Sequence[float], hits: Sequence[bool]) -> Dict[str, Any]:
        return expected_calibration_error(confidences, hits, n_bins=n_bins)

    before = ece(apply_calibration(predictions, temperature=component.cfg["temperature"],
                                   calibration=component.cfg.get("calibration"), aggregate=aggregate), correct)
    held_out: List[float] = []
    held_out_correct: List[bool] = []
    for fit_on, score_on in ((halves[1], halves[0]), (halves[0], halves[1])):
        temperature, mapping = fit_calibration(fit_on, aggregate=aggregate)
        held_out += apply_calibration(score_on, temperature=temperature, calibration=mapping, aggregate=aggregate)
        held_out_correct += [c for _, c in score_on]
    temperature, mapping = fit_calibration(predictions, aggregate=aggregate)
    component.cfg.update(temperature=temperature, calibration=mapping)
    tempered = apply_calibration(predictions, temperature=temperature, calibration=None, aggregate=aggregate)
    return {
        "temperature": temperature, "calibration": mapping, "before": before,
        "after_temperature": ece(tempered, correct),
        "after": ece([calibrated(c, mapping) for c in tempered], correct),
        "cross_validated": ece(held_out, held_out_correct),
        "default_threshold": DEFAULT_THRESHOLD, "thresholds": precision_above(held_out, held_out_correct),
    }
