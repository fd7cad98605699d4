"""Finding KB entries in a Doc: the matcher (phrases, case-sensitive and not, and token patterns) and
the rule that makes its matches non-overlapping.
"""
from typing import Dict, Iterable, List, Sequence, Tuple

from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from .kb import KnowledgeEntry, KnowledgeError
from .regex_guard import guard_pattern

Candidate = Tuple[int, int, int]  # (start token, end token, entry index)


class KnowledgeMatcher:
    """Finds KB entries in a Doc with spaCy's PhraseMatcher (case-sensitive and not) and Matcher."""

    def __init__(
        self, nlp: Language, entries: Sequence[KnowledgeEntry], *, case_sensitive: bool = True, max_regex_chars: int = 100,
        short_forms: bool = False,
    ) -> None:
        """Build the matchers.

        nlp (Language): Its tokenizer splits the phrases; its vocab is shared.
        entries (Sequence[KnowledgeEntry]): The KB, in priority order.
        case_sensitive (bool): For phrases whose entry and alias do not say.
        max_regex_chars (int): Tokens longer than this never match a REGEX (see `guard_regex`).
        short_forms (bool): Match the entries' short forms only (for linking), not their texts, aliases and patterns.
        """
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.tokens = Matcher(nlp.vocab, validate=True)
        self._index: Dict[int, int] = {}
        for index, entry in enumerate(entries):
            key = f"legal_knowledge:{'short:' if short_forms else ''}{index}"
            self._index[nlp.vocab.strings.add(key)] = index
            try:
                phrases = entry.short_form_phrases() if short_forms else entry.phrases(default_case_sensitive=case_sensitive)
                for cased in (True, False):
                    docs = [nlp.make_doc(text) for text, flag in phrases if flag == cased]
                    if docs:
                        (self.exact if cased else self.lower).add(key, docs)
                if entry.pattern is not None and not short_forms:
                    self.tokens.add(key, [guard_pattern(entry.pattern, max_chars=max_regex_chars)])
            except ValueError as err:
                raise KnowledgeError(entry.source or f"entry {index}", str(err)) from None

    def candidates(self, doc: Doc) -> List[Candidate]:
        """Every match, overlapping ones included, sorted by start, end and entry.

        doc (Doc): The document.
        RETURNS (List[Candidate]): (start, end, entry index) triples without duplicates.
        """
        found = set()
        for matcher in (self.exact, self.lower, self.tokens):
            if len(matcher) == 0:  # an empty matcher warns on every call
                continue
            for match_id, start, end in matcher(doc):
                found.add((start, end, self._index[match_id]))
        return sorted(found)


def resolve_overlaps(candidates: Iterable[Candidate]) -> List[Candidate]:
    """Keep non-overlapping matches: longest first, then earliest, then first in the KB.

    candidates (Iterable[Candidate]): (start, end, entry index) triples.
    RETURNS (List[Candidate]): The kept ones, sorted by start.
    """
    taken: set = set()
    kept = []
    for start, end, index in sorted(set(candidates), key=lambda c: (c[0] - c[1], c[0], c[2])):
        if not taken.intersection(range(start, end)):
            kept.append((start, end, index))
            taken.update(range(start, end))
    return sorted(kept)
