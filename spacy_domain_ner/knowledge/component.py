"""The `legal_knowledge` component: fuse knowledge-base matches with the statistical NER.

Modes (config `mode`):
- `fill`: KB matches only go where the NER left no entity (no overlap with one).
- `override`: KB matches win; every NER entity overlapping one is removed.
- `trusted`: per entry; entries with `precision` >= `trusted_precision` (curated entries,
  which carry no estimate, count as fully trusted) override, the others only fill. A
  mined string that is often left un-annotated can then only fill gaps.

KB matches are first made non-overlapping: longest first, then earliest, then the
entry that comes first in the KB.

Confidence: every entity the KB sets gets `ent._.confidence` (see `confidence`): the entry's
`precision` (measured when mining: the share of the string's occurrences in the training data
that were annotated with its label), else `curated_confidence` (default 0.95, a prior for
curated entries without a measurement). An entity that `ner` also found with the same span and
label keeps the NER's score.

Linking (`link`, on by default): every entity in `doc.ents`, whether `ner` or the KB set it,
gets `ent.kb_id_` = the id of the KB entry whose text or alias it is (a leading "the" and a
trailing "'s" are ignored; the entry's label must be the entity's label; the first such entry
in the KB wins). The tokens are compared first, then the text with runs of whitespace made one
space, so a Doc tokenized otherwise than the KB's phrases (a corpus's own tokens) still links. A short form (`short_forms`, e.g. "Commission") links only when the entry's
text or an alias occurred earlier in the same Doc, to the entry mentioned most recently. Entries
without an `id`, and token-pattern entries (families of names such as "any district court"),
never link. An existing kb_id is kept.

The entries are saved inside the pipeline
(to_disk/to_bytes), so a packaged model needs no KB file at load time; the settings
are the component's config.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path

from ..evaluation import confidence as _confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)
from .fusion import MODES, fuse_entities
from .kb import DEFAULT_EXCLUDED_GROUPS, KnowledgeEntry, parse_entry, read_kb, write_kb
from .linking import link_span, phrase_index
from .matcher import Candidate, KnowledgeMatcher, resolve_overlaps


class LegalKnowledge:
    """Pipeline component that adds KB matches to `doc.ents` (see the module docstring)."""

    def __init__(
        self, nlp: Language, name: str = "legal_knowledge", *, mode: str = "override", case_sensitive: bool = True,
        max_regex_chars: int = 100, trusted_precision: float = 0.9, spans_key: Optional[str] = None,
        link: bool = True, curated_confidence: float = 0.95,
    ) -> None:
        check_settings(mode=mode, max_regex_chars=max_regex_chars, trusted_precision=trusted_precision)
        if not 0 <= curated_confidence <= 1:
            raise ValueError(f"curated_confidence must be between 0 and 1, not {curated_confidence}")
        self.nlp, self.name = nlp, name
        self.cfg: Dict[str, Any] = {
            "mode": mode, "case_sensitive": case_sensitive, "max_regex_chars": max_regex_chars,
            "trusted_precision": trusted_precision, "spans_key": spans_key, "link": link,
            "curated_confidence": curated_confidence,
        }
        self.entries: List[KnowledgeEntry] = []
        self._matcher: Optional[KnowledgeMatcher] = None
        self._short_matcher: Optional[KnowledgeMatcher] = None
        self._by_text: Optional[Dict[Tuple[str, bool], List[int]]] = None

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

    @property
    def short_matcher(self) -> KnowledgeMatcher:
        if self._short_matcher is None:
            self._short_matcher = KnowledgeMatcher(self.nlp, self.entries, short_forms=True)
        return self._short_matcher

    def add_entries(self, entries: Iterable[KnowledgeEntry]) -> None:
        """Append entries (after the current ones in priority) and rebuild the matchers.

        entries (Iterable[KnowledgeEntry]): The entries.
        """
        self.entries.extend(entries)
        self._matcher = self._short_matcher = self._by_text = None
        self.matcher  # build now, so a bad entry fails here and not while annotating
        self.short_matcher

    def clear(self) -> None:
        """Remove every entry."""
        self.entries, self._matcher, self._short_matcher, self._by_text = [], None, None, None

    def lookup(self, kb_id: str) -> Optional[KnowledgeEntry]:
        """The first entry with this id (e.g. for its `canonical` name), or None."""
        return next((entry for entry in self.entries if entry.id == kb_id and kb_id), None)

    def entry_confidence(self, entry: KnowledgeEntry) -> float:
        """The confidence of an entity the entry sets: its precision, else `curated_confidence`."""
        return self.cfg["curated_confidence"] if entry.precision is None else float(entry.precision)

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

    def find(self, doc: Doc, candidates: Optional[Sequence[Candidate]] = None) -> List[Tuple[Span, KnowledgeEntry]]:
        """The non-overlapping KB matches in a Doc, as labelled spans (id: the entry id).

        doc (Doc): The document.
        candidates (Optional[Sequence[Candidate]]): The matcher's candidates, if already computed.
        RETURNS (List[Tuple[Span, KnowledgeEntry]]): Each match with its entry, sorted by start.
        """
        found = []
        for start, end, index in resolve_overlaps(self.matcher.candidates(doc) if candidates is None else candidates):
            entry = self.entries[index]
            found.append((Span(doc, start, end, label=entry.label, span_id=entry.id or ""), entry))
        return found

    def link(self, doc: Doc, candidates: Optional[Sequence[Candidate]] = None) -> Doc:
        """Set `kb_id` on the entities of `doc.ents` the KB knows (rules in the module docstring).

        doc (Doc): The document, changed in place.
        candidates (Optional[Sequence[Candidate]]): The matcher's candidates, if already computed.
        RETURNS (Doc): The document.
        """
        if not doc.ents:
            return doc
        matches: Dict[Tuple[int, int], List[int]] = {}
        last_seen: Dict[int, List[int]] = {}
        for start, end, index in self.matcher.candidates(doc) if candidates is None else candidates:
            matches.setdefault((start, end), []).append(index)
            last_seen.setdefault(index, []).append(end)
        for ends in last_seen.values():
            ends.sort()
        short_matches: Dict[Tuple[int, int], List[int]] = {}
        if any(entry.short_forms for entry in self.entries):
            for start, end, index in self.short_matcher.candidates(doc):
                short_matches.setdefault((start, end), []).append(index)
        for ids in (*matches.values(), *short_matches.values()):
            ids.sort()
        if self._by_text is None:
            self._by_text = phrase_index(self.entries, case_sensitive=self.cfg["case_sensitive"])
        linked, changed = [], False
        for ent in doc.ents:
            kb_id = ent.kb_id_ or link_span(ent, self.entries, matches, short_matches, last_seen, self._by_text)
            changed |= kb_id != ent.kb_id_
            linked.append(Span(doc, ent.start, ent.end, label=ent.label, kb_id=kb_id, span_id=ent.id))
        if changed:
            doc.set_ents(linked, default="unmodified")
        return doc

    def __call__(self, doc: Doc) -> Doc:
        candidates = self.matcher.candidates(doc)
        found = self.find(doc, candidates)
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
        self._score_entities(doc, found)
        if self.cfg["link"]:
            self.link(doc, candidates)
        return doc

    def _score_entities(self, doc: Doc, found: Sequence[Tuple[Span, KnowledgeEntry]]) -> None:
        """Give the entities the KB set a confidence (`Doc._.ent_confidences`, read by `Span._.confidence`)."""
        entities = {(ent.start, ent.end, ent.label_) for ent in doc.ents}
        scores = list(doc._.ent_confidences or [])
        scored = {(start, end, label) for start, end, label, _ in scores}
        for span, entry in found:
            key = (span.start, span.end, span.label_)
            if key in entities and key not in scored:
                scores.append([*key, self.entry_confidence(entry)])
                scored.add(key)
        doc._.ent_confidences = scores

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
        "mode": "override", "case_sensitive": True, "max_regex_chars": 100, "trusted_precision": 0.9, "spans_key": None,
        "link": True, "curated_confidence": 0.95,
    },
)
def make_legal_knowledge(
    nlp: Language, name: str, mode: str, case_sensitive: bool, max_regex_chars: int, trusted_precision: float,
    spans_key: Optional[str], link: bool = True, curated_confidence: float = 0.95,
) -> LegalKnowledge:
    """Create the `legal_knowledge` component (empty; add entries with `add_knowledge` or `initialize`).

    mode (str): How KB matches meet the NER's entities: "fill" (only where the NER found none),
        "override" (KB matches win) or "trusted" (entries with precision >= trusted_precision, and
        curated ones, override; the others fill).
    case_sensitive (bool): Match a phrase in its exact case unless its entry or alias says otherwise.
    max_regex_chars (int): Tokens longer than this never match a REGEX pattern of the KB.
    trusted_precision (float): In "trusted" mode, the precision from which a mined entry overrides the NER.
    spans_key (Optional[str]): Also store the KB matches in `doc.spans[spans_key]`; None for none.
    link (bool): Set `ent.kb_id_` on every entity whose text is a KB entry's name or alias with its label.
    curated_confidence (float): `ent._.confidence` of entities set by entries without a measured precision.
    RETURNS (LegalKnowledge): The component.
    """
    return LegalKnowledge(
        nlp, name, mode=mode, case_sensitive=case_sensitive, max_regex_chars=max_regex_chars,
        trusted_precision=trusted_precision, spans_key=spans_key, link=link, curated_confidence=curated_confidence,
    )


def add_knowledge(
    nlp: Language, *, kb_path: Union[str, Path], mode: str = "override", name: str = "legal_knowledge",
    exclude_groups: Sequence[str] = DEFAULT_EXCLUDED_GROUPS, case_sensitive: bool = True, max_regex_chars: int = 100,
    trusted_precision: float = 0.9, spans_key: Optional[str] = None, strict_labels: bool = True,
    link: bool = True, curated_confidence: float = 0.95,
) -> LegalKnowledge:
    """Add the component with a KB to a (trained) pipeline, after `ner` (or last without one).

    nlp (Language): The pipeline; changed in place.
    kb_path (Union[str, Path]): The JSONL KB.
    mode (str): "fill", "override" or "trusted".
    name (str): The component name.
    exclude_groups (Sequence[str]): KB groups to skip.
    case_sensitive, max_regex_chars, trusted_precision, spans_key: See the component.
    strict_labels (bool): Fail when the KB has a label the `ner` component does not know.
    link (bool): Set `kb_id` on the entities the KB knows.
    curated_confidence (float): The confidence of entities set by entries without a precision.
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
        "trusted_precision": trusted_precision, "spans_key": spans_key, "link": link,
        "curated_confidence": curated_confidence,
    }
    where = {"after": "ner"} if "ner" in nlp.pipe_names else {}
    component = nlp.add_pipe("legal_knowledge", name=name, config=config, **where)
    component.add_entries(entries)
    return component
