"""The `entity_consistency` component: what a document says once, it says everywhere.

A filing names its parties again and again ("Fidelity", "SCBV"), and a sentence-level NER finds
some mentions and misses others. Placed after `ner` (and `legal_knowledge`), the component takes
every entity string of the Doc that qualifies (at least `min_chars` characters; with
`require_upper`, at least one capital letter, so "the company" never spreads) and labels its
other mentions - the same token texts, not overlapping an entity - with the string's most
frequent label in the Doc (ties: the first mention's). Existing entities are never changed.

Each added entity gets `ent._.confidence` = the highest confidence of the mentions it was copied
from (None when none of them has one), so `annotate --min-confidence` treats it like its source,
and the kb id of the first of them that is linked.
"""
import collections
from typing import Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..evaluation import confidence as _confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)

Key = Tuple[str, ...]


def consistent_entities(doc: Doc, *, min_chars: int = 2, require_upper: bool = True,
                        labels: Optional[Iterable[str]] = None) -> List[Tuple[Span, Optional[float]]]:
    """The mentions of the Doc's entity strings that are not entities yet, labelled like them.

    doc (Doc): A Doc with entities (`doc.ents`).
    min_chars (int): Shortest entity text that spreads.
    require_upper (bool): Only entity texts with a capital letter spread.
    labels (Optional[Iterable[str]]): Only these labels spread (default: all).
    RETURNS (List[Tuple[Span, Optional[float]]]): The new entities in Doc order, each with the
        highest confidence of its source mentions.
    """
    allowed = None if labels is None else set(labels)
    votes: Dict[Key, collections.Counter] = collections.defaultdict(collections.Counter)
    best: Dict[Key, Optional[float]] = {}
    kb_ids: Dict[Key, str] = {}
    for ent in doc.ents:
        if len(ent.text) < min_chars or (require_upper and not any(c.isupper() for c in ent.text)):
            continue
        if allowed is not None and ent.label_ not in allowed:
            continue
        key = tuple(t.text for t in ent)
        votes[key][ent.label_] += 1
        if ent.kb_id_:
            kb_ids.setdefault(key, ent.kb_id_)
        confidence = ent._.confidence
        if confidence is not None:
            best[key] = max(confidence, best.get(key) or 0.0)
    if not votes:
        return []
    # most_common keeps insertion order among equal counts: a tie goes to the first mention's label
    label_of = {key: counts.most_common(1)[0][0] for key, counts in votes.items()}
    taken = [False] * len(doc)
    for ent in doc.ents:
        taken[ent.start:ent.end] = [True] * len(ent)
    by_first_token: Dict[str, List[Key]] = collections.defaultdict(list)
    for key in sorted(votes, key=len, reverse=True):  # longest first: "Fidelity Investments" before "Fidelity"
        by_first_token[key[0]].append(key)
    added = []
    for i, token in enumerate(doc):
        for key in by_first_token.get(token.text, ()):
            end = i + len(key)
            if end <= len(doc) and not any(taken[i:end]) and tuple(t.text for t in doc[i:end]) == key:
                added.append((Span(doc, i, end, label=label_of[key], kb_id=kb_ids.get(key, "")), best.get(key)))
                taken[i:end] = [True] * len(key)
                break
    return added


class EntityConsistency:
    """Labels the other mentions of a Doc's entity strings (see the module docstring)."""

    def __init__(self, name: str, *, min_chars: int, require_upper: bool, labels: Optional[List[str]]) -> None:
        if min_chars < 1:
            raise ValueError(f"min_chars must be >= 1, not {min_chars}")
        self.name = name
        self.cfg = {"min_chars": min_chars, "require_upper": require_upper, "labels": labels}

    def __call__(self, doc: Doc) -> Doc:
        added = consistent_entities(doc, **self.cfg)
        if added:
            scores = list(doc._.ent_confidences or [])
            scores += [[span.start, span.end, span.label_, c] for span, c in added if c is not None]
            doc.ents = sorted(list(doc.ents) + [span for span, _ in added], key=lambda s: s.start)
            doc._.ent_confidences = scores
        return doc


@Language.factory("entity_consistency", default_config={"min_chars": 2, "require_upper": True, "labels": None})
def make_entity_consistency(nlp: Language, name: str, min_chars: int, require_upper: bool,
                            labels: Optional[List[str]]) -> EntityConsistency:
    """Create the `entity_consistency` component (add it last, after `ner` and `legal_knowledge`)."""
    return EntityConsistency(name, min_chars=min_chars, require_upper=require_upper, labels=labels)
