"""Fusing KB matches with the NER's entities (the `legal_knowledge` modes fill, override and trusted)."""
from typing import List, Sequence, Tuple

from spacy.tokens import Span

MODES = ("fill", "override", "trusted")


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def fuse_entities(
    existing: Sequence[Span], overriding: Sequence[Span], filling: Sequence[Span]
) -> Tuple[List[Span], List[Span]]:
    """Combine model entities with non-overlapping KB matches.

    existing (Sequence[Span]): The model's entities.
    overriding (Sequence[Span]): KB matches that replace overlapping model entities.
    filling (Sequence[Span]): KB matches added only where no entity overlaps them.
    RETURNS (Tuple[List[Span], List[Span]]): The new entities, and the removed model entities.
    """
    kept = [e for e in existing if not any(_overlaps(e, m) for m in overriding)]
    removed = [e for e in existing if any(_overlaps(e, m) for m in overriding)]
    fills = [m for m in filling if not any(_overlaps(m, e) for e in kept)]
    return sorted([*kept, *overriding, *fills], key=lambda s: s.start), removed
