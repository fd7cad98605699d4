"""How far an entity F1 can be trusted: percentile-bootstrap intervals over whole documents.

The entities of one source document are not independent samples: a filing-specific name that the
model misses is missed in every sentence of that filing (on E-NER dev, most sampled misses were
one filing's fund names; docs/lab/boundaries.md). So the unit that is resampled is the
source document, `doc.user_data["doc_id"]` as the converters set it (`dev.csv#4`), or the Doc
itself where there is none. E-NER dev has 8 filings, and its interval is accordingly wide.

`unit_counts` sums (correct, predicted, gold) entities per unit, `f1_interval` gives the interval
of one pipeline's micro F1, `f1_difference_interval` the paired interval of the difference between
two pipelines scored on the same gold (the same resampled units for both), which is much narrower
than the two single intervals suggest when the two pipelines fail on the same documents.
The resampling is scipy's (`scipy.stats.bootstrap`, percentile method).
"""
from typing import Any, Dict, Iterable, Mapping, Tuple

import numpy

# unit -> {"tp": correct entities, "n_pred": predicted entities, "n_gold": gold entities}
UnitCounts = Dict[str, Dict[str, int]]
COUNT_KEYS = ("tp", "n_pred", "n_gold")


def unit_counts(rows: Iterable[Tuple[str, int, int, int]]) -> UnitCounts:
    """Sum per-Doc entity counts into per-unit counts.

    rows (Iterable[Tuple[str, int, int, int]]): (unit, correct, predicted, gold) per Doc.
    RETURNS (UnitCounts): The counts per unit, in order of first appearance.
    """
    units: UnitCounts = {}
    for unit, tp, n_pred, n_gold in rows:
        if min(tp, n_pred, n_gold) < 0 or tp > min(n_pred, n_gold):
            raise ValueError(f"unit {unit!r}: impossible counts tp={tp}, n_pred={n_pred}, n_gold={n_gold}")
        counts = units.setdefault(str(unit), dict.fromkeys(COUNT_KEYS, 0))
        for key, value in zip(COUNT_KEYS, (tp, n_pred, n_gold)):
            counts[key] += int(value)
    return units


def micro_f1(tp: numpy.ndarray, n_pred: numpy.ndarray, n_gold: numpy.ndarray, axis: int = -1) -> numpy.ndarray:
    """Micro F1 over units, 2·TP / (predicted + gold), 0.0 where both are 0 (as spaCy's scorer).

    tp, n_pred, n_gold (numpy.ndarray): Counts per unit along `axis`.
    axis (int): The axis of the units.
    RETURNS (numpy.ndarray): The F1, with `axis` summed away.
    """
    tp, total = numpy.sum(tp, axis=axis), numpy.sum(n_pred, axis=axis) + numpy.sum(n_gold, axis=axis)
    return numpy.divide(2.0 * tp, total, out=numpy.zeros(numpy.shape(total)), where=total > 0)


def _arrays(units: Mapping[str, Mapping[str, int]], order: Iterable[str]) -> Tuple[numpy.ndarray, ...]:
    order = list(order)
    return tuple(numpy.array([units[u][key] for u in order], dtype=float) for key in COUNT_KEYS)


def _bootstrap(data: Tuple[numpy.ndarray, ...], statistic, *, n_resamples: int, confidence: float, seed: int) -> Dict[str, Any]:
    from scipy.stats import bootstrap  # imported here: evaluate without intervals needs no scipy

    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, not {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    n_units = len(data[0])
    info: Dict[str, Any] = {
        "n_units": n_units, "n_resamples": n_resamples, "confidence": confidence,
        "method": "percentile", "seed": seed, "low": None, "high": None,
    }
    if n_units < 2:  # one unit resamples to itself: no interval to give
        return info
    res = bootstrap(data, statistic, n_resamples=n_resamples, vectorized=True, paired=True, axis=0,
                    confidence_level=confidence, method="percentile", rng=numpy.random.default_rng(seed))
    info["low"], info["high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return info


def f1_interval(units: Mapping[str, Mapping[str, int]], *, n_resamples: int = 1000, confidence: float = 0.95,
                seed: int = 0) -> Dict[str, Any]:
    """The percentile-bootstrap interval of a micro entity F1, resampling whole units.

    units (Mapping[str, Mapping[str, int]]): `unit_counts` of one scoring.
    n_resamples (int): Bootstrap resamples.
    confidence (float): Confidence level of the interval.
    seed (int): Seed of the resampling.
    RETURNS (Dict[str, Any]): f (the F1 of all units), low, high (None with fewer than 2 units),
        n_units, n_resamples, confidence, method, seed.
    """
    data = _arrays(units, units)
    info = _bootstrap(data, lambda tp, p, g, axis=-1: micro_f1(tp, p, g, axis=axis),
                      n_resamples=n_resamples, confidence=confidence, seed=seed)
    return {"f": float(micro_f1(*data)), **info}


def f1_difference_interval(
    baseline: Mapping[str, Mapping[str, int]], other: Mapping[str, Mapping[str, int]], *, n_resamples: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> Dict[str, Any]:
    """The paired percentile-bootstrap interval of F1(other) − F1(baseline) on the same gold.

    baseline, other (Mapping[str, Mapping[str, int]]): `unit_counts` of two scorings of the same gold set.
    n_resamples, confidence, seed: See `f1_interval`.
    RETURNS (Dict[str, Any]): baseline_f, other_f, difference, low, high (None with fewer than 2
        units) and the settings.
    """
    if set(baseline) != set(other):
        only = sorted(set(baseline) ^ set(other))[:5]
        raise ValueError(f"the two scorings have different documents (e.g. {only}): not the same gold set")
    order = list(baseline)
    for unit in order:
        if baseline[unit]["n_gold"] != other[unit]["n_gold"]:
            raise ValueError(f"document {unit!r} has {baseline[unit]['n_gold']} gold entities in one scoring and "
                             f"{other[unit]['n_gold']} in the other: not the same gold set (or label map)")
    a, b = _arrays(baseline, order), _arrays(other, order)

    def difference(tp_a, p_a, g_a, tp_b, p_b, g_b, axis=-1):
        return micro_f1(tp_b, p_b, g_b, axis=axis) - micro_f1(tp_a, p_a, g_a, axis=axis)

    info = _bootstrap(a + b, difference, n_resamples=n_resamples, confidence=confidence, seed=seed)
    base_f, other_f = float(micro_f1(*a)), float(micro_f1(*b))
    return {"baseline_f": base_f, "other_f": other_f, "difference": other_f - base_f, **info}
