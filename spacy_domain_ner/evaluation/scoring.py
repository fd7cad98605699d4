"""Span matching and token-level scores: predictions projected onto the gold tokens, one-to-one matches
of gold and predicted spans (the confusion table and the errors), BIO tags and their per-tag report.
"""
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.training import Example

# (start, end, label) on the gold tokens
SpanKey = Tuple[int, int, str]


# (kind, gold index or None, predicted index or None)
Match = Tuple[str, Optional[int], Optional[int]]


def project_predictions(example: Example) -> List[SpanKey]:
    """Predicted entities on the gold tokens, as spaCy's NER scorer sees them.

    example (Example): predicted = the pipeline's Doc, reference = the gold Doc.
    RETURNS (List[SpanKey]): (start, end, label) per scorable prediction, in order.
    """
    align = example.alignment.x2y
    spans = []
    for ent in example.predicted.ents:
        indices = align[ent.start : ent.end]
        if len(indices) and all(t.ent_iob != 0 for t in example.reference[indices[0] : indices[-1] + 1]):
            spans.append((int(indices[0]), int(indices[-1]) + 1, ent.label_))
    return spans


def overlap(a: SpanKey, b: SpanKey) -> int:
    """How many tokens two spans share (0 or less: none).

    a (SpanKey): A (start, end, label).
    b (SpanKey): Another.
    RETURNS (int): min(ends) - max(starts).
    """
    return min(a[1], b[1]) - max(a[0], b[0])


def match_spans(gold: Sequence[SpanKey], predicted: Sequence[SpanKey]) -> List[Match]:
    """Pair gold and predicted spans of one doc (see the module docstring for the order).

    gold (Sequence[SpanKey]): Gold (start, end, label).
    predicted (Sequence[SpanKey]): Predicted (start, end, label) on the same tokens.
    RETURNS (List[Match]): (kind, gold index, predicted index); kind is "correct" or one of ERROR_TYPES.
    """
    matches: List[Match] = []
    free_gold, free_pred = set(range(len(gold))), set(range(len(predicted)))
    by_bounds: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for g, (start, end, _) in enumerate(gold):
        by_bounds[(start, end)].append(g)
    for same_label, kind in ((True, "correct"), (False, "label")):
        for p, (start, end, label) in enumerate(predicted):
            if p not in free_pred:
                continue
            for g in by_bounds[(start, end)]:
                if g in free_gold and (gold[g][2] == label) == same_label:
                    matches.append((kind, g, p))
                    free_gold.discard(g)
                    free_pred.discard(p)
                    break
    pairs = []
    for g in sorted(free_gold):
        for p in sorted(free_pred):
            shared = overlap(gold[g], predicted[p])
            if shared > 0:
                pairs.append((-shared, g, p))
    for _, g, p in sorted(pairs):
        if g in free_gold and p in free_pred:
            matches.append(("boundary" if gold[g][2] == predicted[p][2] else "label_boundary", g, p))
            free_gold.discard(g)
            free_pred.discard(p)
    matches.extend(("missed", g, None) for g in sorted(free_gold))
    matches.extend(("spurious", None, p) for p in sorted(free_pred))
    return matches


def bio_tags(n_tokens: int, spans: Sequence[SpanKey]) -> List[str]:
    """BIO tags of spans over `n_tokens` tokens; where spans overlap, the earlier one wins.

    n_tokens (int): The number of tokens.
    spans (Sequence[SpanKey]): (start, end, label).
    RETURNS (List[str]): One tag per token.
    """
    tags = ["O"] * n_tokens
    for start, end, label in spans:
        if all(tags[i] == "O" for i in range(start, end)):
            tags[start : end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    return tags


def _prf(tp: int, n_pred: int, n_true: int) -> Tuple[float, float, float]:
    # Same formulas and zero_division=0 as scikit-learn, so values compare exactly.
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0
    return precision, recall, f1


def token_report(y_true: Sequence[str], y_pred: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """scikit-learn's classification_report(output_dict=True, zero_division=0) over every tag but O.

    y_true (Sequence[str]): Gold tags.
    y_pred (Sequence[str]): Predicted tags, aligned with y_true.
    RETURNS (Dict[str, Dict[str, float]]): Per tag and "micro avg", "macro avg", "weighted avg":
        precision, recall, f1-score, support.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"token report: {len(y_true)} gold tags but {len(y_pred)} predicted tags")
    tags = sorted((set(y_true) | set(y_pred)) - {"O"})
    true_n, pred_n = Counter(y_true), Counter(y_pred)
    tp = Counter(t for t, p in zip(y_true, y_pred) if t == p)
    report: Dict[str, Dict[str, float]] = {}
    for tag in tags:
        p, r, f = _prf(tp[tag], pred_n[tag], true_n[tag])
        report[tag] = {"precision": p, "recall": r, "f1-score": f, "support": true_n[tag]}
    support = sum(true_n[t] for t in tags)
    p, r, f = _prf(sum(tp[t] for t in tags), sum(pred_n[t] for t in tags), support)
    report["micro avg"] = {"precision": p, "recall": r, "f1-score": f, "support": support}
    for name, weights in (("macro avg", {t: 1 for t in tags}), ("weighted avg", {t: true_n[t] for t in tags})):
        total = sum(weights.values())
        report[name] = {
            key: (sum(report[t][key] * weights[t] for t in tags) / total if total else 0.0)
            for key in ("precision", "recall", "f1-score")
        }
        report[name]["support"] = support
    return report
