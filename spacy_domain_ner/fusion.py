"""The `legal_knowledge` component: fuse knowledge-base matches with the statistical NER.

Modes (config `mode`):
- `fill`: KB matches only go where the NER left no entity (no overlap with one).
- `override`: KB matches win; every NER entity overlapping one is removed.
- `trusted`: per entry; entries with `precision` >= `trusted_precision` (curated entries,
  which carry no estimate, count as fully trusted) override, the others only fill. A
  mined string that is often left un-annotated can then only fill gaps.

KB matches are first made non-overlapping: longest first, then earliest, then the
entry that comes first in the KB. The entries are saved inside the pipeline
(to_disk/to_bytes), so a packaged model needs no KB file at load time; the settings
are the component's config.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path

from .knowledge import (
    DEFAULT_EXCLUDED_GROUPS, KnowledgeEntry, KnowledgeError, guard_pattern, parse_entry, read_kb, write_kb,
)

MODES = ("fill", "override", "trusted")
Candidate = Tuple[int, int, int]  # (start token, end token, entry index)


class KnowledgeMatcher:
    """Finds KB entries in a Doc with spaCy's PhraseMatcher (case-sensitive and not) and Matcher."""

    def __init__(
        self, nlp: Language, entries: Sequence[KnowledgeEntry], *, case_sensitive: bool = True, max_regex_chars: int = 100
    ) -> None:
        """Build the matchers.

        nlp (Language): Its tokenizer splits the phrases; its vocab is shared.
        entries (Sequence[KnowledgeEntry]): The KB, in priority order.
        case_sensitive (bool): For phrases whose entry and alias do not say.
        max_regex_chars (int): Tokens longer than this never match a REGEX (see `guard_regex`).
        """
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.tokens = Matcher(nlp.vocab, validate=True)
        self._index: Dict[int, int] = {}
        for index, entry in enumerate(entries):
            key = f"legal_knowledge:{index}"
            self._index[nlp.vocab.strings.add(key)] = index
            try:
                phrases = entry.phrases(default_case_sensitive=case_sensitive)
                for cased in (True, False):
                    docs = [nlp.make_doc(text) for text, flag in phrases if flag == cased]
                    if docs:
                        (self.exact if cased else self.lower).add(key, docs)
                if entry.pattern is not None:
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


class LegalKnowledge:
    """Pipeline component that adds KB matches to `doc.ents` (see the module docstring)."""

    def __init__(
        self, nlp: Language, name: str = "legal_knowledge", *, mode: str = "fill", case_sensitive: bool = True,
        max_regex_chars: int = 100, trusted_precision: float = 0.9, spans_key: Optional[str] = None,
    ) -> None:
        check_settings(mode=mode, max_regex_chars=max_regex_chars, trusted_precision=trusted_precision)
        self.nlp, self.name = nlp, name
        self.cfg: Dict[str, Any] = {
            "mode": mode, "case_sensitive": case_sensitive, "max_regex_chars": max_regex_chars,
            "trusted_precision": trusted_precision, "spans_key": spans_key,
        }
        self.entries: List[KnowledgeEntry] = []
        self._matcher: Optional[KnowledgeMatcher] = None

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels of the KB, sorted."""
        return tuple(sorted({entry.label for entry in self.entries}))

    @property
    def matcher(self) -> KnowledgeMatcher:
        if self._matcher is None:
            self._matcher = KnowledgeMatcher(
                self.nlp, self.entries, case_sensitive=self.cfg["case_sensitive"], max_regex_chars=self.cfg["max_regex_chars"]
            )
        return self._matcher

    def add_entries(self, entries: Iterable[KnowledgeEntry]) -> None:
        """Append entries (after the current ones in priority) and rebuild the matchers.

        entries (Iterable[KnowledgeEntry]): The entries.
        """
        self.entries.extend(entries)
        self._matcher = None
        self.matcher  # build now, so a bad entry fails here and not while annotating

    def clear(self) -> None:
        """Remove every entry."""
        self.entries, self._matcher = [], None

    def initialize(
        self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *, nlp: Optional[Language] = None,
        kb_path: Optional[Union[str, Path]] = None, exclude_groups: Sequence[str] = DEFAULT_EXCLUDED_GROUPS,
    ) -> None:
        """Load the KB from a file (`[initialize.components.NAME]` kb_path), replacing any entries.

        get_examples (Optional[Callable]): Unused; accepted as spaCy passes it.
        nlp (Optional[Language]): Unused.
        kb_path (Optional[Union[str, Path]]): The JSONL KB; None keeps the current entries.
        exclude_groups (Sequence[str]): KB groups to skip.
        """
        if kb_path is not None:
            self.clear()
            self.add_entries(read_kb(Path(kb_path), exclude_groups=exclude_groups))

    def find(self, doc: Doc) -> List[Tuple[Span, KnowledgeEntry]]:
        """The non-overlapping KB matches in a Doc, as labelled spans (id: the entry id).

        doc (Doc): The document.
        RETURNS (List[Tuple[Span, KnowledgeEntry]]): Each match with its entry, sorted by start.
        """
        found = []
        for start, end, index in resolve_overlaps(self.matcher.candidates(doc)):
            entry = self.entries[index]
            found.append((Span(doc, start, end, label=entry.label, span_id=entry.id or ""), entry))
        return found

    def __call__(self, doc: Doc) -> Doc:
        found = self.find(doc)
        mode = self.cfg["mode"]
        matches = [span for span, _ in found]
        if mode == "trusted":
            threshold = self.cfg["trusted_precision"]
            trusted = [entry.precision is None or entry.precision >= threshold for _, entry in found]
            overriding = [m for m, t in zip(matches, trusted) if t]
            filling = [m for m, t in zip(matches, trusted) if not t]
        else:
            overriding, filling = (matches, []) if mode == "override" else ([], matches)
        ents, removed = fuse_entities(list(doc.ents), overriding, filling)
        # "unmodified" keeps tokens the NER left unset (missing) as they are; removed entities become O.
        covered = {i for ent in ents for i in range(ent.start, ent.end)}
        outside = [doc[i : i + 1] for span in removed for i in range(span.start, span.end) if i not in covered]
        doc.set_ents(ents, outside=outside, default="unmodified")
        if self.cfg["spans_key"]:
            doc.spans[self.cfg["spans_key"]] = matches
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterable[Doc]:
        for doc in stream:
            yield self(doc)

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """Entity P/R/F, overall and per label (spaCy's NER scorer)."""
        return get_ner_prf(examples, **kwargs)

    # Only the entries are serialized: the settings live in the pipeline config, so
    # `spacy.load(path, config={"components.legal_knowledge.mode": "override"})` works.
    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"entries": [entry.to_dict() for entry in self.entries]})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "LegalKnowledge":
        data = srsly.msgpack_loads(bytes_data)
        self.clear()
        self.add_entries(
            parse_entry(d, location=f"{self.name} (bytes) entry {n}") for n, d in enumerate(data["entries"], start=1)
        )
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_kb(self.entries, path / "entries.jsonl")

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "LegalKnowledge":
        entries = read_kb(ensure_path(path) / "entries.jsonl", exclude_groups=())
        self.clear()
        self.add_entries(entries)
        return self


def check_settings(*, mode: str, max_regex_chars: int, trusted_precision: float) -> None:
    """Raise ValueError for a bad component setting."""
    if mode not in MODES:
        raise ValueError(f"unknown fusion mode {mode!r}: expected one of {', '.join(MODES)}")
    if not isinstance(max_regex_chars, int) or max_regex_chars < 1:
        raise ValueError(f"max_regex_chars must be a positive integer, not {max_regex_chars!r}")
    if not 0 <= trusted_precision <= 1:
        raise ValueError(f"trusted_precision must be between 0 and 1, not {trusted_precision}")


@Language.factory(
    "legal_knowledge",
    default_config={
        "mode": "fill", "case_sensitive": True, "max_regex_chars": 100, "trusted_precision": 0.9, "spans_key": None,
    },
)
def make_legal_knowledge(
    nlp: Language, name: str, mode: str, case_sensitive: bool, max_regex_chars: int, trusted_precision: float,
    spans_key: Optional[str],
) -> LegalKnowledge:
    """Create the `legal_knowledge` component (empty; add entries with `add_knowledge` or `initialize`)."""
    return LegalKnowledge(
        nlp, name, mode=mode, case_sensitive=case_sensitive, max_regex_chars=max_regex_chars,
        trusted_precision=trusted_precision, spans_key=spans_key,
    )


def add_knowledge(
    nlp: Language, *, kb_path: Union[str, Path], mode: str = "fill", name: str = "legal_knowledge",
    exclude_groups: Sequence[str] = DEFAULT_EXCLUDED_GROUPS, case_sensitive: bool = True, max_regex_chars: int = 100,
    trusted_precision: float = 0.9, spans_key: Optional[str] = None, strict_labels: bool = True,
) -> LegalKnowledge:
    """Add the component with a KB to a (trained) pipeline, after `ner` (or last without one).

    nlp (Language): The pipeline; changed in place.
    kb_path (Union[str, Path]): The JSONL KB.
    mode (str): "fill", "override" or "trusted".
    name (str): The component name.
    exclude_groups (Sequence[str]): KB groups to skip.
    case_sensitive, max_regex_chars, trusted_precision, spans_key: See the component.
    strict_labels (bool): Fail when the KB has a label the `ner` component does not know.
    RETURNS (LegalKnowledge): The added component.
    """
    check_settings(mode=mode, max_regex_chars=max_regex_chars, trusted_precision=trusted_precision)
    entries = read_kb(Path(kb_path), exclude_groups=exclude_groups)
    if strict_labels and "ner" in nlp.pipe_names:
        unknown = sorted({e.label for e in entries} - set(nlp.get_pipe("ner").labels))
        if unknown:
            raise ValueError(f"{kb_path}: labels {unknown} are not labels of the pipeline's ner component")
    config = {
        "mode": mode, "case_sensitive": case_sensitive, "max_regex_chars": max_regex_chars,
        "trusted_precision": trusted_precision, "spans_key": spans_key,
    }
    where = {"after": "ner"} if "ner" in nlp.pipe_names else {}
    component = nlp.add_pipe("legal_knowledge", name=name, config=config, **where)
    component.add_entries(entries)
    return component
