"""Where entity errors are: each gold entity and each stray prediction in one boundary class.

The confusion table of `evaluate.py` pairs spans one to one; this view instead asks, for each gold
entity, what the predictions overlapping it did to it, which is the question behind names cut
into pieces ("<Sponsor> <Place> Fund 2" predicted as a BUSINESS and a LOCATION):

- `correct`: one prediction with the same boundaries and label;
- `wrong_label`: the same boundaries, another label;
- `too_short`: one overlapping prediction, inside the gold span;
- `too_long`: one overlapping prediction, covering the gold span and more (also when it merges
  the gold entity with another);
- `crossing`: one overlapping prediction that starts inside and ends outside (or the reverse);
- `split`: several predictions overlap it (the name cut into pieces);
- `missed`: no prediction overlaps it;
- `spurious` (counted under the predicted label): a prediction that overlaps no gold entity.

Boundary classes keep whether the overlapping predictions had the gold label (`same_label`).
Spans are (start, end, label) on the gold tokens, as `scoring.project_predictions` gives them.
"""
from collections import Counter, defaultdict
from typing import Any, Dict, List, Sequence, Tuple

from spacy.tokens import Doc

from .scoring import SpanKey, overlap

CLASSES = ("correct", "wrong_label", "too_short", "too_long", "crossing", "split", "missed", "spurious")
ERROR_CLASSES = CLASSES[1:]


def classify_entity(gold: SpanKey, overlapping: Sequence[SpanKey]) -> str:
    """The class of one gold entity, given the predictions that overlap it.

    gold (SpanKey): The gold (start, end, label).
    overlapping (Sequence[SpanKey]): The predictions sharing at least one token with it.
    RETURNS (str): One of CLASSES but "spurious".
    """
    if not overlapping:
        return "missed"
    if len(overlapping) > 1:
        return "split"
    start, end, label = overlapping[0]
    if (start, end) == gold[:2]:
        return "correct" if label == gold[2] else "wrong_label"
    if start >= gold[0] and end <= gold[1]:
        return "too_short"
    if start <= gold[0] and end >= gold[1]:
        return "too_long"
    return "crossing"


def boundary_errors(
    docs: Sequence[Tuple[Doc, Sequence[SpanKey], Sequence[SpanKey]]], *, n_examples: int = 5
) -> Dict[str, Any]:
    """Count the classes per label over documents, with the first examples of each error class.

    docs (Sequence[Tuple[Doc, Sequence[SpanKey], Sequence[SpanKey]]]): Per document the gold Doc,
        its gold spans and the predicted spans on its tokens.
    n_examples (int): Examples kept per error class (the first in document order).
    RETURNS (Dict[str, Any]): `classes`; `per_label` (gold label, or predicted label for spurious,
        -> class -> count); `totals` (class -> count); `same_label` (boundary class -> how many of
        its entities were predicted, in part, with the gold label); `examples` (class -> list of
        {"gold", "predicted"}: texts with labels).
    """
    if n_examples < 0:
        raise ValueError(f"n_examples must be >= 0, not {n_examples}")
    per_label: Dict[str, Counter] = defaultdict(Counter)
    same_label: Counter = Counter()
    examples: Dict[str, List[Dict[str, Any]]] = {name: [] for name in ERROR_CLASSES}
    for doc, gold, predicted in docs:
        touched = set()
        for g in gold:
            overlapping = [p for p in predicted if overlap(g, p) > 0]
            touched.update(overlapping)
            kind = classify_entity(g, overlapping)
            per_label[g[2]][kind] += 1
            if kind in ("too_short", "too_long", "crossing", "split") and any(p[2] == g[2] for p in overlapping):
                same_label[kind] += 1
            if kind != "correct" and len(examples[kind]) < n_examples:
                examples[kind].append({"gold": _text(doc, g), "predicted": [_text(doc, p) for p in overlapping]})
        for p in predicted:
            if p not in touched:
                per_label[p[2]]["spurious"] += 1
                if len(examples["spurious"]) < n_examples:
                    examples["spurious"].append({"gold": None, "predicted": [_text(doc, p)]})
    totals = Counter()
    for counts in per_label.values():
        totals.update(counts)
    return {
        "classes": list(CLASSES),
        "per_label": {label: {name: per_label[label][name] for name in CLASSES} for label in sorted(per_label)},
        "totals": {name: totals[name] for name in CLASSES},
        "same_label": {name: same_label[name] for name in ("too_short", "too_long", "crossing", "split")},
        "examples": examples,
    }


def _text(doc: Doc, span: SpanKey) -> str:
    return f"{doc[span[0]:span[1]].text} ({span[2]})"


def boundary_table(result: Dict[str, Any]) -> Tuple[List[str], List[List[Any]]]:
    """The per-label counts as table header and rows (a total row last).

    result (Dict[str, Any]): The output of `boundary_errors`.
    RETURNS (Tuple[List[str], List[List[Any]]]): Header and rows for `markdown.table`.
    """
    header = ["label"] + list(result["classes"])
    rows = [[label] + [counts[name] for name in result["classes"]] for label, counts in result["per_label"].items()]
    rows.append(["all"] + [result["totals"][name] for name in result["classes"]])
    return header, rows
