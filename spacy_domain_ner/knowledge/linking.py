"""Linking entities to KB ids: an entity's text (without a leading "the" or a trailing "'s") against
the entries' names and aliases with the same label.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Span

from .kb import KnowledgeEntry

_DETERMINERS = ("the", "The", "THE")
_POSSESSIVES = ("'s", "’s", "'", "’")


def _normal(text: str) -> str:
    return " ".join(text.split())


def phrase_index(entries: Sequence[KnowledgeEntry], *, case_sensitive: bool) -> Dict[Tuple[str, bool], List[int]]:
    """(normalized phrase, cased) -> entry indices, for linking by text; uncased keys are lowercased."""
    index: Dict[Tuple[str, bool], List[int]] = {}
    for number, entry in enumerate(entries):
        for text, cased in entry.phrases(default_case_sensitive=case_sensitive):
            key = (_normal(text) if cased else _normal(text).lower(), cased)
            if number not in index.setdefault(key, []):
                index[key].append(number)
    return index


def link_span(
    ent: Span, entries: Sequence[KnowledgeEntry], matches: Dict[Tuple[int, int], List[int]],
    short_matches: Dict[Tuple[int, int], List[int]], last_seen: Dict[int, List[int]],
    by_text: Optional[Dict[Tuple[str, bool], List[int]]] = None,
) -> str:
    """The KB id of one entity, or "" (the rules are in the module docstring).

    ent (Span): The entity.
    entries (Sequence[KnowledgeEntry]): The KB.
    matches (Dict): (start, end) -> indices of the entries whose text or an alias is exactly there.
    short_matches (Dict): (start, end) -> indices of the entries with a short form exactly there.
    last_seen (Dict[int, List[int]]): Entry index -> sorted ends of its text and alias matches.
    by_text (Optional[Dict]): `phrase_index` of the entries, for entities whose tokens differ from the phrases'.
    RETURNS (str): The id, or "".
    """
    start, end = ent.start, ent.end
    if end - start > 1 and ent[0].text in _DETERMINERS:
        start += 1
    if end - start > 1 and ent[-1].text in _POSSESSIVES:
        end -= 1
    text = _normal(ent.doc[start:end].text)
    by_text = by_text or {}
    candidates = sorted({*matches.get((start, end), ()), *by_text.get((text, True), ()), *by_text.get((text.lower(), False), ())})
    for index in candidates:
        entry = entries[index]
        if entry.label == ent.label_ and linkable(entry):
            return entry.id or ""
    best, best_end = "", -1
    for index in short_matches.get((start, end), ()):
        entry = entries[index]
        if entry.label != ent.label_ or not linkable(entry):
            continue
        seen = [e for e in last_seen.get(index, ()) if e <= ent.start]
        if seen and seen[-1] > best_end:  # the entry mentioned most recently before the short form
            best, best_end = entry.id or "", seen[-1]
    return best


def linkable(entry: KnowledgeEntry) -> bool:
    """Entries with an id and a phrase link; token patterns are families of names and do not."""
    return bool(entry.id) and entry.text is not None
